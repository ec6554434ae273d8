"""Python gql (and raw `websockets` frames where gql hides what the server
sent) against okr-pulse: DESIGN.md §10, issue 9. Each test starts its own
server; every wait has a deadline.
"""

import asyncio
import contextlib
import json
import time

import pytest
from gql import Client, GraphQLRequest, gql
from gql.transport.aiohttp_websockets import AIOHTTPWebsocketsTransport
from gql.transport.exceptions import TransportError, TransportServerError
from gql.transport.websockets import WebsocketsTransport
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from conftest import run, until

PROGRESS = "subscription($k: ID) { progressChanged(keyResultId: $k) { keyResultId value source } }"
LEGACY = "graphql-ws"
TRANSPORT_WS = "graphql-transport-ws"
MIB = 1024 * 1024
OTHER_SECRET = "not-the-servers-secret-0123456789-abcdef"


def received_close(ws):
    """The close code the server sent on a `websockets` connection; None when it sent no close frame."""
    frame = ws.protocol.close_rcvd
    return frame.code if frame else None


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


class Subscription:
    """A gql subscription to progressChanged that is known to be in place on
    the server once start() returns: the server has answered a query sent
    after it on the same socket."""

    def __init__(self, session, key_result_id):
        self.session = session
        self.request = GraphQLRequest(PROGRESS, variable_values={"k": key_result_id})
        self.generator = None
        self.pending = None

    async def start(self):
        transport = self.session.transport
        before = set(transport.listeners)
        self.generator = self.session.subscribe(self.request)
        self.pending = asyncio.ensure_future(self.generator.__anext__())
        await until(
            lambda: set(transport.listeners) - before or self.pending.done(), 5, "gql sending the subscription"
        )
        if self.pending.done():
            self.pending.result()  # raises what went wrong
        await asyncio.wait_for(self.session.execute(gql("{ me { id } }")), 5)
        return self

    async def next(self, timeout, what):
        future = self.pending or asyncio.ensure_future(self.generator.__anext__())
        self.pending = future
        done, _ = await asyncio.wait({future}, timeout=timeout)
        if not done:
            raise AssertionError(f"{what}: not within {timeout} s")
        self.pending = None
        return future.result()

    async def close(self):
        if self.pending and not self.pending.done():
            self.pending.cancel()
            with contextlib.suppress(BaseException):
                await self.pending
        with contextlib.suppress(Exception):
            await self.generator.aclose()


async def check_in(server, token, key_result_id, value):
    await asyncio.to_thread(server.check_in, token, key_result_id, value)


async def receives_a_check_in(server, token, key_result_id, transport, value=42):
    """Subscribes through `transport`, checks in, and returns the event and the announced subprotocol."""
    async with Client(transport=transport) as session:
        # What the handshake said, as gql saw the headers (gql 4's WebsocketsTransport
        # looks up "Sec-WebSocket-Protocol" case-sensitively and, not finding it, assumes graphql-ws).
        said = {k: v for k, v in transport.response_headers.items() if k.lower() == "sec-websocket-protocol"}
        try:
            subscription = await Subscription(session, key_result_id).start()
        except TransportError as error:
            raise AssertionError(
                f"the subscription failed; the handshake said {said}, gql speaks {transport.subprotocol!r}: "
                f"{error!r}, from {error.__cause__!r}"
            ) from error
        try:
            await check_in(server, token, key_result_id, value)
            event = await subscription.next(5, "the progressChanged event")
        finally:
            await subscription.close()
    return event["progressChanged"], transport.subprotocol


# gql 4.4's WebsocketsTransport reads the Sec-WebSocket-Protocol answer
# case-sensitively and misses hyper's lower-case header, so it speaks
# graphql-ws whatever the server announced when graphql-ws was offered at all.
# The server speaks what it announces (see the raw-frame test below and the
# AIOHTTP transport, which works in both orders); this order fails in gql.
GQL_HEADER_CASE_BUG = pytest.mark.xfail(
    strict=True,
    reason="gql 4.4 WebsocketsTransport reads the subprotocol header case-sensitively",
)


@pytest.mark.parametrize(
    "offer",
    [
        [LEGACY, TRANSPORT_WS],
        pytest.param([TRANSPORT_WS, LEGACY], marks=GQL_HEADER_CASE_BUG),
    ],
    ids=["graphql-ws-first (gql's default)", "graphql-transport-ws-first"],
)
def test_a_subscription_works_whichever_order_gql_offers_the_two_subprotocols_in(server, token, key_result, offer):
    transport = WebsocketsTransport(url=server.ws_url, init_payload=bearer(token), subprotocols=offer)
    event, announced = run(receives_a_check_in(server, token, key_result, transport), 30)
    assert announced in offer
    assert event == {"keyResultId": key_result, "value": 42, "source": "CHECK_IN"}, f"announced {announced}"


@pytest.mark.parametrize(
    "offer",
    [[LEGACY, TRANSPORT_WS], [TRANSPORT_WS, LEGACY], [LEGACY], [TRANSPORT_WS]],
    ids=lambda offer: "+".join(offer),
)
def test_the_server_speaks_exactly_the_subprotocol_it_announced(server, token, offer):
    async def main():
        async with connect(server.ws_url, subprotocols=offer, open_timeout=5, close_timeout=5) as ws:
            announced = ws.subprotocol
            assert announced in offer, f"announced {announced!r} for the offer {offer}"
            start = "subscribe" if announced == TRANSPORT_WS else "start"
            try:
                await ws.send(json.dumps({"type": "connection_init", "payload": bearer(token)}))
                while (message := json.loads(await asyncio.wait_for(ws.recv(), 5)))["type"] == "ka":
                    pass
                assert message["type"] == "connection_ack", message
                await ws.send(json.dumps({"id": "1", "type": start, "payload": {"query": "{ me { email } }"}}))
                while (message := json.loads(await asyncio.wait_for(ws.recv(), 5))).get("id") != "1":
                    pass
            except ConnectionClosed as closed:
                raise AssertionError(
                    f"announced {announced!r}; a {start!r} in that protocol was answered by the close {closed}"
                ) from None
            return announced, message

    announced, message = run(main(), 30)
    result = "next" if announced == TRANSPORT_WS else "data"
    assert message["type"] == result, f"announced {announced!r}, answered {message}"
    assert message["payload"]["data"]["me"]["email"] == "admin@example.com"


@pytest.mark.parametrize(
    "offer",
    [[LEGACY, TRANSPORT_WS], [TRANSPORT_WS, LEGACY]],
    ids=["graphql-ws-first (gql's default)", "graphql-transport-ws-first"],
)
def test_a_subscription_works_through_gqls_aiohttp_websockets_transport(server, token, key_result, offer):
    transport = AIOHTTPWebsocketsTransport(url=server.ws_url, init_payload=bearer(token), subprotocols=offer)
    event, announced = run(receives_a_check_in(server, token, key_result, transport), 30)
    assert event == {"keyResultId": key_result, "value": 42, "source": "CHECK_IN"}, f"announced {announced}"


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY])
def test_a_token_in_the_upgrade_requests_authorization_header_is_accepted(server, token, key_result, protocol):
    # No token in connection_init (gql sends an empty payload), as `gql-cli -H` does.
    transport = WebsocketsTransport(url=server.ws_url, headers=bearer(token), subprotocols=[protocol])
    event, _ = run(receives_a_check_in(server, token, key_result, transport), 30)
    assert event["value"] == 42


def test_a_token_in_connection_init_wins_over_the_one_in_the_upgrade_header(server, token):
    member = server.token(email="member@example.com", role="member")

    async def main():
        transport = WebsocketsTransport(url=server.ws_url, headers=bearer(member), init_payload=bearer(token))
        async with Client(transport=transport) as session:
            return await asyncio.wait_for(session.execute(gql("{ me { email role } }")), 5)

    assert run(main(), 30)["me"] == {"email": "admin@example.com", "role": "ADMIN"}


def test_a_legacy_client_with_a_bad_token_gets_connection_error_which_gql_raises_as_a_server_error(server):
    bad = server.token(secret=OTHER_SECRET)

    async def main():
        transport = WebsocketsTransport(url=server.ws_url, init_payload=bearer(bad), subprotocols=[LEGACY])
        with pytest.raises(TransportServerError) as raised:
            async with Client(transport=transport):
                pass
        return raised.value

    error = run(main(), 30)
    assert "Server error" in str(error)


def test_a_legacy_client_with_a_bad_token_gets_connection_error_then_the_4403_close(server):
    bad = server.token(secret=OTHER_SECRET)

    async def main():
        async with connect(server.ws_url, subprotocols=[LEGACY], open_timeout=5, close_timeout=5) as ws:
            assert ws.subprotocol == LEGACY
            await ws.send(json.dumps({"type": "connection_init", "payload": bearer(bad)}))
            frames = []
            with contextlib.suppress(ConnectionClosed):
                while True:
                    frames.append(json.loads(await asyncio.wait_for(ws.recv(), 5)))
            return frames, received_close(ws)

    frames, code = run(main(), 30)
    assert [f.get("type") for f in frames] == ["connection_error"], f"frames before the close: {frames}"
    assert code == 4403


def test_a_legacy_subscribe_that_fails_validation_gets_error_not_data(server, token):
    async def main():
        async with connect(server.ws_url, subprotocols=[LEGACY], open_timeout=5, close_timeout=5) as ws:
            assert ws.subprotocol == LEGACY
            await ws.send(json.dumps({"type": "connection_init", "payload": bearer(token)}))
            while (message := json.loads(await asyncio.wait_for(ws.recv(), 5)))["type"] == "ka":
                pass
            assert message["type"] == "connection_ack", message
            await ws.send(
                json.dumps(
                    {"id": "1", "type": "start", "payload": {"query": "subscription { progressChanged { noSuchField } }"}}
                )
            )
            while (message := json.loads(await asyncio.wait_for(ws.recv(), 5))).get("id") != "1":
                pass
            return message

    message = run(main(), 30)
    assert message["type"] == "error", f"got {message}"


def test_a_socket_whose_token_expires_is_closed_with_4403_within_seconds_of_expiry(server, key_result):
    short = server.token(ttl="6s")
    issued = time.monotonic()

    async def main():
        transport = WebsocketsTransport(url=server.ws_url, init_payload=bearer(short))
        async with Client(transport=transport) as session:
            websocket = transport.adapter.websocket
            subscription = await Subscription(session, key_result).start()
            try:
                with pytest.raises(TransportError):
                    await subscription.next(20, "the socket closing after the token expired")
            finally:
                await subscription.close()
            closed = time.monotonic() - issued
        return closed, received_close(websocket)

    closed, code = run(main(), 40)
    print(f"closed {closed:.1f} s after the 6-second token was minted, code {code}")
    assert code == 4403, f"closed with {code} after {closed:.1f} s"
    # `exp` is in whole seconds, so the token lives 5 to 6 s; the server may allow a few seconds of leeway.
    assert 4.5 <= closed <= 15, f"closed {closed:.1f} s after a 6-second token was minted"


async def open_socket(server, token=None):
    """A graphql-transport-ws socket, acknowledged first when a token is given."""
    ws = await connect(server.ws_url, subprotocols=[TRANSPORT_WS], open_timeout=5, close_timeout=5)
    assert ws.subprotocol == TRANSPORT_WS
    if token:
        await ws.send(json.dumps({"type": "connection_init", "payload": bearer(token)}))
        ack = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert ack["type"] == "connection_ack", ack
    return ws


async def send_oversized(ws, size, acknowledged):
    """Sends one message of `size` bytes (a subscribe on an acknowledged socket,
    a connection_init otherwise) and returns the close code the server sent."""
    async with ws:
        if acknowledged:
            message = {"id": "1", "type": "subscribe", "payload": {"query": "x" * size}}
        else:
            message = {"type": "connection_init", "payload": {"padding": "x" * size}}
        with contextlib.suppress(ConnectionClosed):
            await asyncio.wait_for(ws.send(json.dumps(message)), 10)
        answers = []
        try:
            async with asyncio.timeout(10):
                while True:
                    answers.append((await ws.recv())[:200])
        except ConnectionClosed:
            return received_close(ws)
        except TimeoutError:
            return f"still open 10 s later, having answered {answers}"


def memory_growth(before, after):
    return {key: (after[key] - before[key]) / 1024 for key in before}


def test_a_5_mib_message_before_authentication_is_closed_with_1009_and_the_server_memory_stays_flat(server):
    before = server.memory_kib()

    async def main():
        return await send_oversized(await open_socket(server), 5 * MIB, acknowledged=False)

    code = run(main(), 30)
    grown = memory_growth(before, server.memory_kib())
    print(f"close {code}; RSS grew {grown['VmRSS']:.1f} MiB, peak RSS {grown['VmHWM']:.1f} MiB")
    assert code == 1009
    assert grown["VmRSS"] < 30, f"RSS grew {grown['VmRSS']:.1f} MiB"
    assert grown["VmHWM"] < 30, f"peak RSS grew {grown['VmHWM']:.1f} MiB"


def test_ten_authenticated_sockets_sending_5_mib_at_once_are_each_closed_with_1009_and_the_server_memory_stays_flat(
    server,
):
    token = server.token()
    before = server.memory_kib()

    async def main():
        # One after another, so no per-address cap on unacknowledged sockets is in play.
        sockets = [await open_socket(server, token) for _ in range(10)]
        return await asyncio.gather(*(send_oversized(ws, 5 * MIB, acknowledged=True) for ws in sockets))

    codes = run(main(), 60)
    grown = memory_growth(before, server.memory_kib())
    print(f"closes {codes}; RSS grew {grown['VmRSS']:.1f} MiB, peak RSS {grown['VmHWM']:.1f} MiB")
    assert codes == [1009] * 10, f"close codes: {codes}"
    assert grown["VmRSS"] < 30, f"RSS grew {grown['VmRSS']:.1f} MiB"
    assert grown["VmHWM"] < 30, f"peak RSS grew {grown['VmHWM']:.1f} MiB"


def test_ten_gib_of_maximum_bytes_billed_validates_against_the_schema_and_round_trips(server, token):
    from gql.transport.aiohttp import AIOHTTPTransport

    ten_gib = 10 * 1024 * 1024 * 1024
    transport = AIOHTTPTransport(
        url=f"{server.origin}/graphql", headers={"Authorization": f"Bearer {token}"}
    )
    client = Client(transport=transport, fetch_schema_from_transport=True)
    mutation = GraphQLRequest(
        'mutation($b: Int64) { createConnection(input: { name: "Warehouse", '
        'projectId: "acme-analytics", maximumBytesBilled: $b }) { maximumBytesBilled } }',
        variable_values={"b": ten_gib},
    )

    async def create():
        async with client as session:
            return await session.execute(mutation)

    result = run(create(), 30)
    assert client.schema is not None, "gql fetched the schema and validated the document"
    assert result["createConnection"]["maximumBytesBilled"] == ten_gib
