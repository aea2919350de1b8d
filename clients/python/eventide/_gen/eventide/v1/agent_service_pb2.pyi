from eventide._gen.buf.validate import validate_pb2 as _validate_pb2
from eventide._gen.eventide.v1 import resources_pb2 as _resources_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CompleteTurnRequest(_message.Message):
    __slots__ = ["lease_id", "output", "turn_id"]
    LEASE_ID_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    TURN_ID_FIELD_NUMBER: _ClassVar[int]
    lease_id: str
    output: _struct_pb2.Struct
    turn_id: str
    def __init__(self, turn_id: _Optional[str] = ..., lease_id: _Optional[str] = ..., output: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class CompleteTurnResponse(_message.Message):
    __slots__ = ["turn"]
    TURN_FIELD_NUMBER: _ClassVar[int]
    turn: _resources_pb2.Turn
    def __init__(self, turn: _Optional[_Union[_resources_pb2.Turn, _Mapping]] = ...) -> None: ...

class FailTurnRequest(_message.Message):
    __slots__ = ["error", "lease_id", "retryable", "turn_id"]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    LEASE_ID_FIELD_NUMBER: _ClassVar[int]
    RETRYABLE_FIELD_NUMBER: _ClassVar[int]
    TURN_ID_FIELD_NUMBER: _ClassVar[int]
    error: str
    lease_id: str
    retryable: bool
    turn_id: str
    def __init__(self, turn_id: _Optional[str] = ..., lease_id: _Optional[str] = ..., error: _Optional[str] = ..., retryable: bool = ...) -> None: ...

class FailTurnResponse(_message.Message):
    __slots__ = ["turn"]
    TURN_FIELD_NUMBER: _ClassVar[int]
    turn: _resources_pb2.Turn
    def __init__(self, turn: _Optional[_Union[_resources_pb2.Turn, _Mapping]] = ...) -> None: ...

class ReceiveTurnsRequest(_message.Message):
    __slots__ = ["agent_id", "max_in_flight"]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    MAX_IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    max_in_flight: int
    def __init__(self, agent_id: _Optional[str] = ..., max_in_flight: _Optional[int] = ...) -> None: ...

class ReceiveTurnsResponse(_message.Message):
    __slots__ = ["assignment", "cancellation"]
    ASSIGNMENT_FIELD_NUMBER: _ClassVar[int]
    CANCELLATION_FIELD_NUMBER: _ClassVar[int]
    assignment: TurnAssignment
    cancellation: TurnCancellation
    def __init__(self, assignment: _Optional[_Union[TurnAssignment, _Mapping]] = ..., cancellation: _Optional[_Union[TurnCancellation, _Mapping]] = ...) -> None: ...

class RenewLeaseRequest(_message.Message):
    __slots__ = ["lease_id"]
    LEASE_ID_FIELD_NUMBER: _ClassVar[int]
    lease_id: str
    def __init__(self, lease_id: _Optional[str] = ...) -> None: ...

class RenewLeaseResponse(_message.Message):
    __slots__ = ["lease_expires_at"]
    LEASE_EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    lease_expires_at: _timestamp_pb2.Timestamp
    def __init__(self, lease_expires_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class TurnAssignment(_message.Message):
    __slots__ = ["attempt", "lease_expires_at", "lease_id", "thread", "turn"]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    LEASE_EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    LEASE_ID_FIELD_NUMBER: _ClassVar[int]
    THREAD_FIELD_NUMBER: _ClassVar[int]
    TURN_FIELD_NUMBER: _ClassVar[int]
    attempt: int
    lease_expires_at: _timestamp_pb2.Timestamp
    lease_id: str
    thread: _resources_pb2.Thread
    turn: _resources_pb2.Turn
    def __init__(self, turn: _Optional[_Union[_resources_pb2.Turn, _Mapping]] = ..., thread: _Optional[_Union[_resources_pb2.Thread, _Mapping]] = ..., lease_id: _Optional[str] = ..., lease_expires_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., attempt: _Optional[int] = ...) -> None: ...

class TurnCancellation(_message.Message):
    __slots__ = ["lease_id", "turn_id"]
    LEASE_ID_FIELD_NUMBER: _ClassVar[int]
    TURN_ID_FIELD_NUMBER: _ClassVar[int]
    lease_id: str
    turn_id: str
    def __init__(self, turn_id: _Optional[str] = ..., lease_id: _Optional[str] = ...) -> None: ...
