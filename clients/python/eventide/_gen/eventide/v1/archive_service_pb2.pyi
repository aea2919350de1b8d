from eventide._gen.buf.validate import validate_pb2 as _validate_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Archive(_message.Message):
    __slots__ = ["archive_id", "bytes", "created_at", "event_count", "from_seq", "object_key", "sha256", "tenant_id", "thread_id", "to_seq"]
    ARCHIVE_ID_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    EVENT_COUNT_FIELD_NUMBER: _ClassVar[int]
    FROM_SEQ_FIELD_NUMBER: _ClassVar[int]
    OBJECT_KEY_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    THREAD_ID_FIELD_NUMBER: _ClassVar[int]
    TO_SEQ_FIELD_NUMBER: _ClassVar[int]
    archive_id: str
    bytes: int
    created_at: _timestamp_pb2.Timestamp
    event_count: int
    from_seq: int
    object_key: str
    sha256: str
    tenant_id: str
    thread_id: str
    to_seq: int
    def __init__(self, archive_id: _Optional[str] = ..., thread_id: _Optional[str] = ..., tenant_id: _Optional[str] = ..., from_seq: _Optional[int] = ..., to_seq: _Optional[int] = ..., object_key: _Optional[str] = ..., event_count: _Optional[int] = ..., bytes: _Optional[int] = ..., sha256: _Optional[str] = ..., created_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ArchiveThreadRequest(_message.Message):
    __slots__ = ["thread_id", "up_to_seq"]
    THREAD_ID_FIELD_NUMBER: _ClassVar[int]
    UP_TO_SEQ_FIELD_NUMBER: _ClassVar[int]
    thread_id: str
    up_to_seq: int
    def __init__(self, thread_id: _Optional[str] = ..., up_to_seq: _Optional[int] = ...) -> None: ...

class ArchiveThreadResponse(_message.Message):
    __slots__ = ["archives"]
    ARCHIVES_FIELD_NUMBER: _ClassVar[int]
    archives: _containers.RepeatedCompositeFieldContainer[Archive]
    def __init__(self, archives: _Optional[_Iterable[_Union[Archive, _Mapping]]] = ...) -> None: ...

class GetArchiveRequest(_message.Message):
    __slots__ = ["archive_id"]
    ARCHIVE_ID_FIELD_NUMBER: _ClassVar[int]
    archive_id: str
    def __init__(self, archive_id: _Optional[str] = ...) -> None: ...

class GetArchiveResponse(_message.Message):
    __slots__ = ["archive"]
    ARCHIVE_FIELD_NUMBER: _ClassVar[int]
    archive: Archive
    def __init__(self, archive: _Optional[_Union[Archive, _Mapping]] = ...) -> None: ...

class ListArchivesRequest(_message.Message):
    __slots__ = ["thread_id"]
    THREAD_ID_FIELD_NUMBER: _ClassVar[int]
    thread_id: str
    def __init__(self, thread_id: _Optional[str] = ...) -> None: ...

class ListArchivesResponse(_message.Message):
    __slots__ = ["archives"]
    ARCHIVES_FIELD_NUMBER: _ClassVar[int]
    archives: _containers.RepeatedCompositeFieldContainer[Archive]
    def __init__(self, archives: _Optional[_Iterable[_Union[Archive, _Mapping]]] = ...) -> None: ...
