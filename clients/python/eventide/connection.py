"""A gRPC channel to an eventide server, with its API key on every call."""

from __future__ import annotations

import collections
from typing import Optional, Sequence, Tuple

import grpc


class _CallDetails(
    collections.namedtuple("_CallDetails", ("method", "timeout", "metadata", "credentials", "wait_for_ready", "compression")),
    grpc.ClientCallDetails,
):
    pass


class _Bearer(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
    """Adds `authorization: Bearer <key>` (call credentials would need TLS; keys also work in cleartext)."""

    def __init__(self, api_key: str) -> None:
        self._header = ("authorization", f"Bearer {api_key}")

    def _details(self, details: grpc.ClientCallDetails) -> grpc.ClientCallDetails:
        metadata = [m for m in (details.metadata or ()) if m[0] != "authorization"] + [self._header]
        return _CallDetails(
            details.method,
            details.timeout,
            metadata,
            details.credentials,
            getattr(details, "wait_for_ready", None),
            getattr(details, "compression", None),
        )

    def intercept_unary_unary(self, continuation, client_call_details, request):
        return continuation(self._details(client_call_details), request)

    def intercept_unary_stream(self, continuation, client_call_details, request):
        return continuation(self._details(client_call_details), request)


def parse_target(target: str, tls: Optional[bool]) -> Tuple[str, bool]:
    """`host:port`, or a URL (`http://…` cleartext, `https://…` TLS) as `npm start` prints it."""
    use_tls = bool(tls)
    for scheme, scheme_tls in (("https://", True), ("http://", False)):
        if target.startswith(scheme):
            target = target[len(scheme) :]
            use_tls = scheme_tls if tls is None else bool(tls)
    return target.rstrip("/"), use_tls


def open_channel(
    target: str,
    api_key: Optional[str] = None,
    tls: Optional[bool] = None,
    root_certificates: Optional[bytes] = None,
    options: Sequence[Tuple[str, object]] = (),
) -> grpc.Channel:
    address, use_tls = parse_target(target, tls)
    channel_options = [
        # Notice a dead server on an idle stream (a tail between heartbeats) within seconds.
        ("grpc.keepalive_time_ms", 10_000),
        ("grpc.keepalive_timeout_ms", 5_000),
        ("grpc.keepalive_permit_without_calls", 0),
        # Reconnect promptly after a restart instead of gRPC's default backoff of up to 2 minutes.
        ("grpc.initial_reconnect_backoff_ms", 100),
        ("grpc.max_reconnect_backoff_ms", 2_000),
        ("grpc.max_receive_message_length", 64 * 1024 * 1024),
        *options,
    ]
    if use_tls:
        channel = grpc.secure_channel(address, grpc.ssl_channel_credentials(root_certificates), channel_options)
    else:
        channel = grpc.insecure_channel(address, channel_options)
    return grpc.intercept_channel(channel, _Bearer(api_key)) if api_key else channel
