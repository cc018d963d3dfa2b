"""Replays a function's failed batches: from its dead-letter queue, through the function again.

    python -m tools.redrive --env prod                      # re-invoke the deployed processor function
    python -m tools.redrive --env dev --local --outputs outputs.json   # run the processor code here
    python -m tools.redrive --env prod --function folder    # the folder's failed partials

An event source mapping sends a batch it gave up on to the function's on-failure queue as metadata only:
``KinesisBatchInfo`` (the processor, on the readings stream; the folder, on the partials stream): stream,
shard, first and last sequence number. For each message this reads those records back from the stream
(while the stream still retains them: the readings stream's retention, 24 hours for the partials stream),
hands them to the function in events shaped like the mapping's,
and deletes the message only when every record of it is done (no ``batchItemFailures``, no function
error). Run it with that function's event source mapping disabled (see docs/operations.md): the
processor merges read-then-write relying on one writer per sensor, so a replay racing the live mapping on
the same sensor could lose one of the two updates. A message whose records are partly gone from the
stream, or that failed again, stays in the queue and is reported. Both functions are idempotent: the
processor never counts a reading twice (and sends, as a late batch, only what it stores itself:
``lambdas.processor.service``), and the folder folds each piece of a partial once (the aggregate's ``src``
marks), publishing a window's alert once (its ``alert_id``), so replaying a batch twice changes nothing.

``--local`` runs the processor's own code in this process with the deployed resources' names from
``terraform output -json`` (``--outputs``); without it the deployed function is invoked (needs
``lambda:InvokeFunction`` on it, and SQS/Kinesis read access). Exit status: 0 when the queue was
drained, 1 when messages remain, 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lambdas.common.aws import Clients
from stacks.config import PROFILES
from stacks.layout import FOLDER_BATCH_SIZE
from stacks.naming import Kind, Namer, NamingError
from tools.local.simulate import chunks, endpoint_clients, kinesis_event

MAX_EVENT_BYTES = 5 * 1024 * 1024
"""A synchronous invocation's payload limit is 6 MB; a replayed event stays a megabyte under it."""
Submit = Callable[[dict[str, Any]], list[str]]
"""Hands an event to the function; returns the sequence numbers it reports as failed."""
FUNCTIONS = ("processor", "folder")
"""The functions with a stream event source mapping and an on-failure queue."""
KINESIS = "KinesisBatchInfo"
"""The on-failure record's metadata key (both mappings read Kinesis streams)."""


class Unusable(Exception):
    """A message this tool cannot act on (not the on-failure record of the function's mapping)."""


@dataclass(frozen=True)
class BatchInfo:
    stream_arn: str
    shard_id: str
    start: str
    end: str
    size: int

    @classmethod
    def of(cls, body: str) -> BatchInfo:
        try:
            info = json.loads(body)[KINESIS]
            return cls(info["streamArn"], info["shardId"], info["startSequenceNumber"], info["endSequenceNumber"],
                       int(info.get("batchSize", 0)))  # fmt: skip
        except (ValueError, KeyError, TypeError) as error:
            raise Unusable(f"not an on-failure record with {KINESIS}: {error!r}") from None

    @property
    def stream_name(self) -> str:
        return self.stream_arn.rsplit("/", 1)[-1]

    @property
    def region(self) -> str:
        return self.stream_arn.split(":")[3]


@dataclass
class Outcome:
    message_id: str
    status: str  # "stored", "failed", "expired", "unusable"
    records: int = 0
    detail: str = ""


@dataclass
class Report:
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def drained(self) -> bool:
        return all(o.status == "stored" for o in self.outcomes)

    def count(self, status: str) -> int:
        return sum(o.status == status for o in self.outcomes)


def sequence_of(record: dict[str, Any]) -> str:
    """A Kinesis record's sequence number (what ``batchItemFailures`` names)."""
    return str(record["SequenceNumber"])


def fetch(clients: Clients, info: BatchInfo) -> tuple[list[dict[str, Any]], bool]:
    """The batch's records, in order, and whether all of them are still in the stream."""
    return _fetch_kinesis(clients["kinesis"], info)


def _fetch_kinesis(kinesis: Any, info: BatchInfo) -> tuple[list[dict[str, Any]], bool]:
    try:
        iterator = kinesis.get_shard_iterator(
            StreamName=info.stream_name, ShardId=info.shard_id, ShardIteratorType="AT_SEQUENCE_NUMBER",
            StartingSequenceNumber=info.start,
        )["ShardIterator"]  # fmt: skip
    except kinesis.exceptions.InvalidArgumentException:
        iterator = kinesis.get_shard_iterator(
            StreamName=info.stream_name, ShardId=info.shard_id, ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
    return _read_range(lambda it: kinesis.get_records(ShardIterator=it, Limit=10_000), iterator, info)


def _read_range(
    get_records: Callable[[str], dict[str, Any]], iterator: str | None, info: BatchInfo
) -> tuple[list[dict[str, Any]], bool]:
    """Records from ``iterator`` on whose sequence numbers lie in ``info``'s range, and whether the range's
    first and last records were both reached."""
    start, end = int(info.start), int(info.end)
    records: list[dict[str, Any]] = []
    reached_end, empty = False, 0
    while iterator and not reached_end:
        page = get_records(iterator)
        for record in page["Records"]:
            sequence = int(sequence_of(record))
            if sequence > end:
                reached_end = True
                break
            if sequence >= start:
                records.append(record)
            if sequence == end:
                reached_end = True
                break
        iterator = page.get("NextShardIterator")
        empty = 0 if page["Records"] else empty + 1
        # Kinesis says when a page is at the tip (an empty page while behind is normal in a sparse shard)
        if empty and page.get("MillisBehindLatest", 0) == 0:
            break
    complete = reached_end and bool(records) and int(sequence_of(records[0])) == start
    return records, complete


def replay(info: BatchInfo, records: Sequence[dict[str, Any]], submit: Submit, batch_size: int) -> list[str]:
    """Hand the records to the function in order, in events shaped like its mapping's; the sequence numbers
    still failing afterwards."""
    failed: list[str] = []

    def event_of(chunk: Sequence[dict[str, Any]]) -> dict[str, Any]:
        return kinesis_event(info.shard_id, chunk, info.region, info.stream_arn)

    for chunk in chunks(records, batch_size, event_of, MAX_EVENT_BYTES):
        failed.extend(submit(event_of(chunk)))
    return failed


def redrive(
    clients: Clients,
    queue_url: str,
    submit: Submit,
    *,
    batch_size: int,
    max_messages: int = 1000,
    visibility_timeout: int = 900,
) -> Report:
    """Replay every message in the queue once; delete those whose records are all done."""
    sqs = clients["sqs"]
    report = Report()
    seen: set[str] = set()
    while len(report.outcomes) < max_messages:
        messages = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1, VisibilityTimeout=visibility_timeout,
            AttributeNames=["All"],
        ).get("Messages", [])  # fmt: skip
        fresh = [m for m in messages if m["MessageId"] not in seen]
        if not fresh:
            break
        for message in fresh:
            seen.add(message["MessageId"])
            # restart the message's visibility timeout now: the ones before it may have taken a while
            sqs.change_message_visibility(
                QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=visibility_timeout
            )
            outcome = _handle(message, clients, submit, batch_size)
            report.outcomes.append(outcome)
            if outcome.status == "stored":
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            print(f"{outcome.message_id}: {outcome.status} ({outcome.records} records) {outcome.detail}".rstrip(),
                  file=sys.stderr)  # fmt: skip
    return report


def _handle(message: dict[str, Any], clients: Clients, submit: Submit, batch_size: int) -> Outcome:
    message_id = message["MessageId"]
    try:
        info = BatchInfo.of(message["Body"])
    except Unusable as error:
        return Outcome(message_id, "unusable", detail=str(error))
    records: list[dict[str, Any]] = []
    try:
        records, complete = fetch(clients, info)
        failed = replay(info, records, submit, batch_size)
    except Exception as error:  # a read or function error: the message stays for another try
        return Outcome(message_id, "failed", len(records), f"{type(error).__name__}: {error}")
    if failed:
        return Outcome(message_id, "failed", len(records), f"{len(failed)} record(s) still failing")
    if not complete:
        return Outcome(message_id, "expired", len(records),
                       f"the stream no longer holds all of {info.start}..{info.end}: kept for inspection")  # fmt: skip
    return Outcome(message_id, "stored", len(records))


# ----------------------------------------------------------------------------------------- submitters


def lambda_submitter(client: Any, function_name: str) -> Submit:
    """Invoke the deployed function synchronously, as its event source mapping would."""

    def submit(event: dict[str, Any]) -> list[str]:
        response = client.invoke(FunctionName=function_name, InvocationType="RequestResponse",
                                 Payload=json.dumps(event).encode())  # fmt: skip
        payload = json.loads(response["Payload"].read() or b"{}")
        if response.get("FunctionError"):
            raise RuntimeError(f"{response['FunctionError']}: {payload}")
        return [f["itemIdentifier"] for f in payload.get("batchItemFailures", [])]

    return submit


def local_submitter(service: Any) -> Submit:
    """Run the function's code in this process (``Processor`` or ``Folder``: its ``handle``)."""

    def submit(event: dict[str, Any]) -> list[str]:
        return [f["itemIdentifier"] for f in service.handle(event)["batchItemFailures"]]

    return submit


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tools.redrive", description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", required=True, help="environment suffix (dev, staging, prod, pr123, ...)")
    parser.add_argument("--region", help="AWS region (default: the environment profile's)")
    parser.add_argument("--function", choices=FUNCTIONS, default="processor", help="whose dead-letter queue")
    parser.add_argument("--local", action="store_true", help="run the function's code here instead of invoking it")
    parser.add_argument("--outputs", type=Path, help="terraform output -json of the environment (with --local)")
    parser.add_argument("--max-messages", type=int, default=1000)
    parser.add_argument("--endpoint-url", help="send every AWS call here (an emulator)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        namer = Namer(args.env)
    except NamingError as error:
        parser.error(str(error))
    if args.local and args.outputs is None:
        parser.error("--local needs --outputs (terraform output -json of the environment)")
    config = PROFILES.get(args.env) or PROFILES["dev"].with_name(args.env)
    region = args.region or config.region
    clients = endpoint_clients(args.endpoint_url, region)
    function = args.function
    queue_url = clients["sqs"].get_queue_url(QueueName=namer.name(Kind.SQS_QUEUE, f"{function}-dlq"))["QueueUrl"]
    if args.local:
        submit = local_submitter(
            _local_service(function, args.env, region, args.outputs, clients=clients, config=config)
        )
    else:
        submit = lambda_submitter(clients["lambda"], namer.name(Kind.LAMBDA_FUNCTION, function))
    batch_size = config.batch_size if function == "processor" else FOLDER_BATCH_SIZE
    report = redrive(clients, queue_url, submit, batch_size=batch_size, max_messages=args.max_messages)
    print(
        f"redrive {args.env} {function}: {report.count('stored')} message(s) done and deleted, "
        f"{report.count('failed')} failed again, {report.count('expired')} with expired records, "
        f"{report.count('unusable')} unusable",
        file=sys.stderr,
    )
    return 0 if report.drained else 1


def _local_service(function: str, env: str, region: str, outputs: Path, *, clients: Clients, config: Any) -> Any:
    """The function's service object, configured as the deployed function is (its environment variables)."""
    from tools.local.simulate import Targets  # noqa: PLC0415

    names = Targets.from_outputs(env, region, json.loads(outputs.read_text())).runtime_names()
    if function == "folder":
        from lambdas.folder.service import Folder, settings_from_env  # noqa: PLC0415
        from stacks.layout import folder_environment  # noqa: PLC0415

        return Folder(settings_from_env(folder_environment(names, config)), clients=clients)
    from lambdas.processor.service import Processor, Settings  # noqa: PLC0415
    from stacks.layout import processor_environment  # noqa: PLC0415

    return Processor(Settings.from_env(processor_environment(names, config)), clients=clients)


if __name__ == "__main__":
    sys.exit(main())
