from eventide._gen.buf.validate import validate_pb2 as _validate_pb2
from eventide._gen.eventide.v1 import resources_pb2 as _resources_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AppendEventsRequest(_message.Message):
    __slots__ = ["events", "expected_last_seq", "lease_id", "thread_id", "turn_id"]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_LAST_SEQ_FIELD_NUMBER: _ClassVar[int]
    LEASE_ID_FIELD_NUMBER: _ClassVar[int]
    THREAD_ID_FIELD_NUMBER: _ClassVar[int]
    TURN_ID_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[_resources_pb2.EventInput]
    expected_last_seq: int
    lease_id: str
    thread_id: str
    turn_id: str
    def __init__(self, thread_id: _Optional[str] = ..., turn_id: _Optional[str] = ..., lease_id: _Optional[str] = ..., expected_last_seq: _Optional[int] = ..., events: _Optional[_Iterable[_Union[_resources_pb2.EventInput, _Mapping]]] = ...) -> None: ...

class AppendEventsResponse(_message.Message):
    __slots__ = ["duplicate", "events", "first_seq", "last_seq"]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    FIRST_SEQ_FIELD_NUMBER: _ClassVar[int]
    LAST_SEQ_FIELD_NUMBER: _ClassVar[int]
    duplicate: bool
    events: _containers.RepeatedCompositeFieldContainer[_resources_pb2.Event]
    first_seq: int
    last_seq: int
    def __init__(self, first_seq: _Optional[int] = ..., last_seq: _Optional[int] = ..., events: _Optional[_Iterable[_Union[_resources_pb2.Event, _Mapping]]] = ..., duplicate: bool = ...) -> None: ...

class CaughtUp(_message.Message):
    __slots__ = ["last_seq"]
    LAST_SEQ_FIELD_NUMBER: _ClassVar[int]
    last_seq: int
    def __init__(self, last_seq: _Optional[int] = ...) -> None: ...

class EventBatch(_message.Message):
    __slots__ = ["events"]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[_resources_pb2.Event]
    def __init__(self, events: _Optional[_Iterable[_Union[_resources_pb2.Event, _Mapping]]] = ...) -> None: ...

class GetEventRequest(_message.Message):
    __slots__ = ["event_id", "tenant_id"]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    tenant_id: str
    def __init__(self, event_id: _Optional[str] = ..., tenant_id: _Optional[str] = ...) -> None: ...

class GetEventResponse(_message.Message):
    __slots__ = ["event"]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    event: _resources_pb2.Event
    def __init__(self, event: _Optional[_Union[_resources_pb2.Event, _Mapping]] = ...) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ["scanned_seq", "sent_at"]
    SCANNED_SEQ_FIELD_NUMBER: _ClassVar[int]
    SENT_AT_FIELD_NUMBER: _ClassVar[int]
    scanned_seq: int
    sent_at: _timestamp_pb2.Timestamp
    def __init__(self, scanned_seq: _Optional[int] = ..., sent_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListEventsRequest(_message.Message):
    __slots__ = ["after_seq", "created_after", "created_before", "page_size", "page_token", "tenant_id", "thread_id", "turn_id", "types"]
    AFTER_SEQ_FIELD_NUMBER: _ClassVar[int]
    CREATED_AFTER_FIELD_NUMBER: _ClassVar[int]
    CREATED_BEFORE_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    THREAD_ID_FIELD_NUMBER: _ClassVar[int]
    TURN_ID_FIELD_NUMBER: _ClassVar[int]
    TYPES_FIELD_NUMBER: _ClassVar[int]
    after_seq: int
    created_after: _timestamp_pb2.Timestamp
    created_before: _timestamp_pb2.Timestamp
    page_size: int
    page_token: str
    tenant_id: str
    thread_id: str
    turn_id: str
    types: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, thread_id: _Optional[str] = ..., turn_id: _Optional[str] = ..., types: _Optional[_Iterable[str]] = ..., created_after: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., created_before: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., after_seq: _Optional[int] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., tenant_id: _Optional[str] = ...) -> None: ...

class ListEventsResponse(_message.Message):
    __slots__ = ["events", "next_page_token"]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[_resources_pb2.Event]
    next_page_token: str
    def __init__(self, events: _Optional[_Iterable[_Union[_resources_pb2.Event, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class TailEventsRequest(_message.Message):
    __slots__ = ["after_seq", "follow", "max_events_per_response", "thread_id", "turn_id", "types"]
    AFTER_SEQ_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_FIELD_NUMBER: _ClassVar[int]
    MAX_EVENTS_PER_RESPONSE_FIELD_NUMBER: _ClassVar[int]
    THREAD_ID_FIELD_NUMBER: _ClassVar[int]
    TURN_ID_FIELD_NUMBER: _ClassVar[int]
    TYPES_FIELD_NUMBER: _ClassVar[int]
    after_seq: int
    follow: bool
    max_events_per_response: int
    thread_id: str
    turn_id: str
    types: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, thread_id: _Optional[str] = ..., after_seq: _Optional[int] = ..., follow: bool = ..., types: _Optional[_Iterable[str]] = ..., turn_id: _Optional[str] = ..., max_events_per_response: _Optional[int] = ...) -> None: ...

class TailEventsResponse(_message.Message):
    __slots__ = ["caught_up", "event", "events", "heartbeat"]
    CAUGHT_UP_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    caught_up: CaughtUp
    event: _resources_pb2.Event
    events: EventBatch
    heartbeat: Heartbeat
    def __init__(self, event: _Optional[_Union[_resources_pb2.Event, _Mapping]] = ..., caught_up: _Optional[_Union[CaughtUp, _Mapping]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ..., events: _Optional[_Union[EventBatch, _Mapping]] = ...) -> None: ...
