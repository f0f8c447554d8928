"""Chat handlers, one per route: $connect stores the connection under its
room, $disconnect removes it, sendmessage posts to everyone in the
sender's room through API Gateway's Management API (at the API's
execute-api URL) and removes the connections it reports gone."""

import json
import logging
import os
import time

import boto3
from boto3.dynamodb.conditions import Key

logger = logging.getLogger()
logger.setLevel(logging.INFO)

table = boto3.resource("dynamodb").Table(os.environ["TABLE_NAME"])
ROOM_INDEX = os.environ["ROOM_INDEX"]
DAY = 24 * 3600


def on_connect(event, context):
    query = event.get("queryStringParameters") or {}
    table.put_item(
        Item={
            "connectionId": event["requestContext"]["connectionId"],
            "room": query.get("room", "lobby"),
            "name": query.get("name", "anonymous"),
            "expiresAt": int(time.time()) + DAY,
        }
    )
    return {"statusCode": 200}


def on_disconnect(event, context):
    table.delete_item(Key={"connectionId": event["requestContext"]["connectionId"]})
    return {"statusCode": 200}


def on_send(event, context):
    ctx = event["requestContext"]
    me = table.get_item(Key={"connectionId": ctx["connectionId"]}).get("Item")
    if me is None:
        return {"statusCode": 403, "body": "unknown connection"}
    message = json.loads(event.get("body") or "{}").get("message", "")
    # The API's own execute-api URL, as AWS's current sample builds it.
    region = os.environ["AWS_REGION"]
    api = boto3.client(
        "apigatewaymanagementapi",
        endpoint_url=f"https://{ctx['apiId']}.execute-api.{region}.amazonaws.com/{ctx['stage']}",
    )
    text = f"{me['name']}: {message}".encode()
    members = table.query(
        IndexName=ROOM_INDEX, KeyConditionExpression=Key("room").eq(me["room"])
    )["Items"]
    for member in members:
        try:
            api.post_to_connection(ConnectionId=member["connectionId"], Data=text)
        except api.exceptions.GoneException:
            logger.info("connection %s is gone; removing it", member["connectionId"])
            table.delete_item(Key={"connectionId": member["connectionId"]})
    return {"statusCode": 200}
