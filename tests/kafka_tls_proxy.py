#!/usr/bin/env python3
"""A TLS-terminating, SASL/OAUTHBEARER-checking proxy in front of a plaintext Kafka broker
(tansu), standing in for Amazon MSK's IAM listener in tests/tests/relay_kafka.rs.

tansu 0.6 has no working TLS listener (its `--cert`/`--key` are parsed but the acceptor is never
used) and its SASL only knows PLAIN and SCRAM. This proxy:

* terminates TLS with the given certificate and key (Python's `ssl`, TLS 1.2+);
* answers SaslHandshake (v1) and SaslAuthenticate (v0-v2) itself, as MSK does for IAM: only
  OAUTHBEARER is offered; the client's first message must be `n,,\\x01auth=Bearer <token>\\x01\\x01`
  and the token must be an MSK IAM token (base64url without padding of a SigV4-presigned
  `https://kafka.<region>.amazonaws.com/?Action=kafka-cluster%3AConnect&...` URL for the
  expected region and access key id, dated within 5 minutes of now, X-Amz-Expires=900);
  otherwise SASL_AUTHENTICATION_FAILED (58);
* before a successful authentication forwards only ApiVersions (as a broker requiring SASL does)
  and closes the connection on anything else; afterwards forwards every frame unchanged, both
  ways, to the upstream broker;
* announces a session lifetime (--session-lifetime-ms, SaslAuthenticate v1+) and, like a Kafka
  broker whose client does not re-authenticate (KIP-368), closes the connection when a request
  arrives after the session expired, without forwarding it;
* appends one JSON line per event to --log: {"event": "auth", "version": int, "ok": bool,
  "reason": str, "url": str} per SaslAuthenticate, {"event": "session-expired"} per connection
  closed for an expired session, {"event": "unauthenticated-request", ...} per request refused
  before SASL.

Prints "READY <port>" on stdout once listening. Standard library only.
"""

import argparse
import asyncio
import base64
import datetime
import json
import ssl
import struct
import sys
import urllib.parse

API_VERSIONS = 18
SASL_HANDSHAKE = 17
SASL_AUTHENTICATE = 36
SASL_AUTHENTICATION_FAILED = 58
UNSUPPORTED_SASL_MECHANISM = 33


def read_uvarint(data, pos):
    shift = 0
    value = 0
    while True:
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7


def uvarint(value):
    out = bytearray()
    while True:
        b = value & 0x7F
        value >>= 7
        if value:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def parse_header(frame):
    """api_key, api_version, correlation_id, offset of the body (request header v1 or v2)."""
    api_key, api_version, correlation_id = struct.unpack(">hhi", frame[:8])
    (client_id_len,) = struct.unpack(">h", frame[8:10])
    pos = 10 + max(client_id_len, 0)
    flexible = (api_key == SASL_AUTHENTICATE and api_version >= 2)
    if flexible:
        count, pos = read_uvarint(frame, pos)
        for _ in range(count):
            _tag, pos = read_uvarint(frame, pos)
            size, pos = read_uvarint(frame, pos)
            pos += size
    return api_key, api_version, correlation_id, pos, flexible


def check_token(message, args):
    """(ok, reason, url) for an OAUTHBEARER client first message."""
    try:
        text = message.decode("utf-8")
    except UnicodeDecodeError:
        return False, "not UTF-8", ""
    prefix, sep, rest = text.partition("\x01auth=Bearer ")
    if prefix != "n,," or not sep or not rest.endswith("\x01\x01"):
        return False, f"not an OAUTHBEARER initial response: {text!r}", ""
    token = rest[: -len("\x01\x01")]
    if "=" in token or "+" in token or "/" in token:
        return False, "token is not base64url without padding", ""
    try:
        url = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("utf-8")
    except Exception as e:  # noqa: BLE001 - any decoding failure is a refusal
        return False, f"token does not decode: {e}", ""
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme != "https" or parsed.netloc != f"kafka.{args.region}.amazonaws.com" or parsed.path != "/":
        return False, f"wrong endpoint {parsed.scheme}://{parsed.netloc}{parsed.path}", url
    params = urllib.parse.parse_qs(parsed.query, keep_blank_values=True, strict_parsing=True)
    single = {k: v[0] for k, v in params.items() if len(v) == 1}
    if len(single) != len(params):
        return False, "a parameter is repeated", url
    date = single.get("X-Amz-Date", "")
    expected = {
        "Action": "kafka-cluster:Connect",
        "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
        "X-Amz-Credential": f"{args.access_key_id}/{date[:8]}/{args.region}/kafka-cluster/aws4_request",
        "X-Amz-Expires": "900",
        "X-Amz-SignedHeaders": "host",
    }
    for name, value in expected.items():
        if single.get(name) != value:
            return False, f"{name}={single.get(name)!r}, expected {value!r}", url
    signature = single.get("X-Amz-Signature", "")
    if len(signature) != 64 or any(c not in "0123456789abcdef" for c in signature):
        return False, "X-Amz-Signature is not 64 hex digits", url
    if not single.get("User-Agent"):
        return False, "no User-Agent", url
    try:
        signed = datetime.datetime.strptime(date, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)
    except ValueError:
        return False, f"X-Amz-Date {date!r}", url
    skew = abs((datetime.datetime.now(datetime.timezone.utc) - signed).total_seconds())
    if skew > 300:
        return False, f"X-Amz-Date {date} is {skew:.0f}s from now", url
    return True, "", url


def log(args, entry):
    with open(args.log, "a", encoding="utf-8") as f:
        f.write(json.dumps(entry) + "\n")


def handshake_response(correlation_id, mechanism):
    error = 0 if mechanism == "OAUTHBEARER" else UNSUPPORTED_SASL_MECHANISM
    name = b"OAUTHBEARER"
    body = struct.pack(">hi", error, 1) + struct.pack(">h", len(name)) + name
    return struct.pack(">i", correlation_id) + body


def authenticate_response(correlation_id, version, error, message, lifetime_ms):
    msg = message.encode("utf-8") if message else None
    header = struct.pack(">i", correlation_id)
    if version >= 2:
        header += uvarint(0)
        body = struct.pack(">h", error)
        body += uvarint(0) if msg is None else uvarint(len(msg) + 1) + msg
        body += uvarint(1)  # empty auth bytes (compact: length + 1)
        body += struct.pack(">q", lifetime_ms if error == 0 else 0)
        body += uvarint(0)
    else:
        body = struct.pack(">h", error)
        body += struct.pack(">h", -1) if msg is None else struct.pack(">h", len(msg)) + msg
        body += struct.pack(">i", 0)
        if version == 1:
            body += struct.pack(">q", lifetime_ms if error == 0 else 0)
    return header + body


async def read_frame(reader):
    size = struct.unpack(">i", await reader.readexactly(4))[0]
    return await reader.readexactly(size)


def write_frame(writer, payload):
    writer.write(struct.pack(">i", len(payload)) + payload)


async def pipe(reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
        pass
    finally:
        writer.close()


async def handle(client_reader, client_writer, args):
    loop = asyncio.get_running_loop()
    try:
        up_reader, up_writer = await asyncio.open_connection(args.upstream_host, args.upstream_port)
    except OSError:
        client_writer.close()
        return
    upstream_to_client = asyncio.create_task(pipe(up_reader, client_writer))
    try:
        authenticated = False
        session_ends = None
        while True:
            frame = await read_frame(client_reader)
            if authenticated:
                if loop.time() >= session_ends:
                    log(args, {"event": "session-expired"})
                    break
                write_frame(up_writer, frame)
                await up_writer.drain()
                continue
            api_key, version, correlation_id, pos, _flex = parse_header(frame)
            if api_key == API_VERSIONS:
                write_frame(up_writer, frame)
                await up_writer.drain()
            elif api_key == SASL_HANDSHAKE and version == 1:
                (length,) = struct.unpack(">h", frame[pos : pos + 2])
                mechanism = frame[pos + 2 : pos + 2 + length].decode("utf-8", "replace")
                write_frame(client_writer, handshake_response(correlation_id, mechanism))
                await client_writer.drain()
            elif api_key == SASL_AUTHENTICATE and version <= 2:
                if version >= 2:
                    length, p = read_uvarint(frame, pos)
                    auth = frame[p : p + length - 1]
                else:
                    (length,) = struct.unpack(">i", frame[pos : pos + 4])
                    auth = frame[pos + 4 : pos + 4 + length]
                ok, reason, url = check_token(auth, args)
                log(args, {"event": "auth", "version": version, "ok": ok, "reason": reason, "url": url})
                error = 0 if ok else SASL_AUTHENTICATION_FAILED
                write_frame(
                    client_writer,
                    authenticate_response(correlation_id, version, error, reason, args.session_lifetime_ms),
                )
                await client_writer.drain()
                authenticated = ok
                session_ends = loop.time() + args.session_lifetime_ms / 1000
            else:
                log(args, {"event": "unauthenticated-request", "api_key": api_key, "version": version})
                break
    except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
        pass
    finally:
        up_writer.close()
        client_writer.close()
        upstream_to_client.cancel()


async def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen-host", default="127.0.0.1")
    parser.add_argument("--listen-port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="host:port of the plaintext broker")
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--region", required=True)
    parser.add_argument("--access-key-id", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--session-lifetime-ms", type=int, default=900_000)
    args = parser.parse_args()
    args.upstream_host, port = args.upstream.rsplit(":", 1)
    args.upstream_port = int(port)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(args.cert, args.key)
    server = await asyncio.start_server(
        lambda r, w: handle(r, w, args), args.listen_host, args.listen_port, ssl=context
    )
    print(f"READY {args.listen_port}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
