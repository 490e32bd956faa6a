"""An audit protobuf message (struct_pb2.ListValue) gains an entry per request."""

from google.protobuf import struct_pb2

EXPECTED = {
    "leak": True,
    "category": "growing_collection",
    "site": "real/leak_protobuf_repeated_field.py#add",
    "root": "audit",
}

audit = struct_pb2.ListValue()


def step(i: int) -> None:
    audit.values.add().string_value = f"request {i} " + "." * 200  # leak-site: add
