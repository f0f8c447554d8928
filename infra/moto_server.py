"""moto's server with DynamoDB's per-request atomicity.

DynamoDB applies every request atomically: a TransactWriteItems is all or
nothing and GetItem is serialisable with it; a conditional write checks and
writes as one step. moto's threaded server runs requests concurrently
without a lock, so under concurrent clients it can show a transaction half
applied, or let two conditional writes both pass. Roomcast's concurrency
tests check Roomcast's logic against DynamoDB's guarantees, so this launcher
serialises request handling (connections are still accepted concurrently).

It also answers DynamoDB's data-plane calls with plain JSON encoding of
moto's own result instead of moto's model-driven response serializer: in
a room of 64 members, that serializer spent 90% of moto's CPU on the
fan-out's member Query (py-spy), a cost DynamoDB does not have, so every
Roomcast figure measured on moto was moto's serializer. The bytes are the
same DynamoDB JSON; control-plane calls keep moto's serializer.

It also makes moto's TransactWriteItems cost what DynamoDB's does: moto
backs up every table a transaction touches with a deep copy of the whole
table (to roll back on failure), so a transaction's cost grows with the
table, and a table that has collected a few hundred items makes every send
slower for moto's reasons. Here the backup is of the touched items only:
the same all-or-nothing result, at a cost that does not grow with the table.

Its dispatcher also finds DynamoDB's app once: moto looks for the backend
of every request by listing its own modules on disk (a sixth of its work
per request in a hot room); DynamoDB's requests all name their target in
X-Amz-Target, so the first one's app serves the rest.

And a Query of the base table reads only its partition: moto lists and
sorts every item of the table for each Query, then keeps the partition's,
so a room's history Query grew with every other room's messages (py-spy:
two thirds of moto's work in a 64-sender hot room). DynamoDB reads the
partition's items in key order; the answer is the same.

Usage: python moto_server.py HOST PORT
"""

import copy
import signal
import sys
import threading

import moto.dynamodb.models as dynamodb_models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import Table

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple


def item_level_transactions() -> None:
    """Replaces moto's whole-table backups in TransactWriteItems with an
    undo log of the items the transaction touches. Requests are serialised
    by the lock below, so swapping the module's deepcopy for the duration
    of one transaction is safe."""
    original = DynamoDBBackend.transact_write_items
    real_deepcopy = copy.deepcopy

    def table_key(backend, op):
        table = backend.tables.get(op.get("TableName"))
        if table is None:
            return None, None
        if "Item" in op:
            attrs = op["Item"]
            key = {table.hash_key_attr: attrs[table.hash_key_attr]}
            if table.range_key_attr is not None:
                key[table.range_key_attr] = attrs[table.range_key_attr]
            return op["TableName"], key
        return op["TableName"], op.get("Key")

    def transact_write_items(self, transact_items):
        undo = []
        for item in transact_items:
            _, op = next(iter(item.items()))
            name, key = table_key(self, op)
            if key is None:
                continue
            try:
                before = self.get_item(name, key)
            except Exception:  # noqa: BLE001 - moto raises its own errors later
                before = None
            undo.append((name, key, before.to_json()["Attributes"] if before else None))

        def shallow_tables(x, memo=None):
            return x if isinstance(x, Table) else real_deepcopy(x, memo)

        dynamodb_models.copy.deepcopy = shallow_tables
        try:
            return original(self, transact_items)
        except Exception:
            for name, key, attrs in reversed(undo):
                if attrs is None:
                    if self.get_item(name, key) is not None:
                        self.delete_item(name, key)
                else:
                    self.put_item(name, attrs)
            raise
        finally:
            dynamodb_models.copy.deepcopy = real_deepcopy

    DynamoDBBackend.transact_write_items = transact_write_items


def partition_queries() -> None:
    """Gives a base-table Query only its partition's items to filter and sort.
    Index queries keep moto's path (an index spans partitions). Safe for
    the same reason as above: requests run one at a time under the lock."""
    original = Table.query

    def query(self, hash_key, *args, **kwargs):
        index_name = args[6] if len(args) > 6 else kwargs.get("index_name")
        if index_name or hash_key is None or self.range_key_attr is None:
            return original(self, hash_key, *args, **kwargs)
        partition = list(self.items.get(hash_key, {}).values())
        self.all_items = lambda: partition
        try:
            return original(self, hash_key, *args, **kwargs)
        finally:
            del self.all_items

    Table.query = query


def dynamodb_app_once() -> None:
    """Memoises the dispatcher's choice of app for DynamoDB requests."""
    original = DomainDispatcherApplication.get_application
    chosen = {}

    def get_application(self, environ):
        if not environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
            return original(self, environ)
        app = chosen.get("dynamodb")
        if app is None:
            app = chosen["dynamodb"] = original(self, environ)
        return app

    DomainDispatcherApplication.get_application = get_application


DATA_PLANE = {
    "GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan",
    "BatchGetItem", "BatchWriteItem", "TransactWriteItems", "TransactGetItems",
}


def plain_json_results() -> None:
    """Serialises the data-plane results of DynamoDB with json.dumps."""
    from moto.dynamodb.models.utilities import dynamo_json_dump
    from moto.dynamodb.responses import DynamoResult

    original = DynamoResult.execute_result

    def execute_result(self, context):
        if context.operation_model.name not in DATA_PLANE:
            return original(self, context)
        body = dynamo_json_dump(self.result)
        return 200, {"Content-Type": "application/x-amz-json-1.0"}, body

    DynamoResult.execute_result = execute_result


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    item_level_transactions()
    partition_queries()
    plain_json_results()
    dynamodb_app_once()
    app = DomainDispatcherApplication(create_backend_app)
    lock = threading.Lock()

    def atomic(environ, start_response):
        # The whole response is produced under the lock: backends may
        # compute lazily while the body is iterated.
        with lock:
            return [b"".join(app(environ, start_response))]

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    run_simple(host, port, atomic, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
