// One function for every route, as in AWS's WebSocket chat tutorial:
// $connect stores the connection, $disconnect removes it, sendmessage
// posts the message to every stored connection (and removes the ones API
// Gateway says are gone), $default explains what to send.
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import {
  DynamoDBDocumentClient,
  PutCommand,
  DeleteCommand,
  ScanCommand,
} from "@aws-sdk/lib-dynamodb";
import {
  ApiGatewayManagementApiClient,
  PostToConnectionCommand,
  GoneException,
} from "@aws-sdk/client-apigatewaymanagementapi";

const ddb = DynamoDBDocumentClient.from(new DynamoDBClient({}));
const TABLE = process.env.TABLE_NAME;

export const handler = async (event) => {
  const { routeKey, connectionId, domainName, stage } = event.requestContext;
  const callback = new ApiGatewayManagementApiClient({
    endpoint: `https://${domainName}/${stage}`,
  });

  switch (routeKey) {
    case "$connect": {
      const name = event.queryStringParameters?.name ?? "anonymous";
      await ddb.send(new PutCommand({ TableName: TABLE, Item: { connectionId, name } }));
      return { statusCode: 200 };
    }
    case "$disconnect":
      await ddb.send(new DeleteCommand({ TableName: TABLE, Key: { connectionId } }));
      return { statusCode: 200 };
    case "sendmessage": {
      const { message } = JSON.parse(event.body);
      const { Items = [] } = await ddb.send(new ScanCommand({ TableName: TABLE }));
      const sender = Items.find((i) => i.connectionId === connectionId);
      const text = `${sender?.name ?? "someone"}: ${message}`;
      await Promise.all(
        Items.map(async ({ connectionId: to }) => {
          try {
            await callback.send(
              new PostToConnectionCommand({ ConnectionId: to, Data: text }),
            );
          } catch (e) {
            if (e instanceof GoneException) {
              console.log(`connection ${to} is gone; removing it`);
              await ddb.send(new DeleteCommand({ TableName: TABLE, Key: { connectionId: to } }));
            } else {
              throw e;
            }
          }
        }),
      );
      return { statusCode: 200 };
    }
    default:
      await callback.send(
        new PostToConnectionCommand({
          ConnectionId: connectionId,
          Data: 'Use the sendmessage route: {"action": "sendmessage", "message": "hello"}',
        }),
      );
      return { statusCode: 200 };
  }
};
