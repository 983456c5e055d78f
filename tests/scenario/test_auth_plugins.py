"""Auth plugins against `grapevine echo` with real clients: key_auth (header
and query, key hidden from the upstream unless forwarded), jwt (every
algorithm, expiry, not-before, skew, bad signatures, alg=none, algorithm
confusion), basic_auth (hashes only in stored config), the consumer used by
rate_limit and written to the access log. Tokens are signed here with
`cryptography` (no JWT library: the tests must build the forged ones too)."""

import base64
import hashlib
import hmac
import json
import time

import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from gvtest import Echo, Node, wait_until

HS_SECRET = "s3cret-for-hs"


def b64u(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def pem(key) -> str:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC256 = ec.generate_private_key(ec.SECP256R1())
EC384 = ec.generate_private_key(ec.SECP384R1())
HASH = {"256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()}


def sign(alg: str, signing_input: bytes, secret=None) -> bytes:
    bits = alg[2:]
    if alg.startswith("HS"):
        key = (secret if secret is not None else HS_SECRET)
        key = key.encode() if isinstance(key, str) else key
        return hmac.new(key, signing_input, getattr(hashlib, "sha" + bits)).digest()
    if alg.startswith("RS"):
        return RSA_KEY.sign(signing_input, padding.PKCS1v15(), HASH[bits])
    key, size = (EC256, 32) if bits == "256" else (EC384, 48)
    r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(HASH[bits])))
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


def token(alg: str, claims: dict, *, header_alg=None, secret=None, sig=None) -> str:
    head = b64u(json.dumps({"alg": header_alg or alg, "typ": "JWT"}).encode())
    body = b64u(json.dumps(claims).encode())
    signing_input = f"{head}.{body}".encode()
    if sig is None:
        sig = sign(alg, signing_input, secret)
    return f"{head}.{body}.{b64u(sig)}"


ALGS = ["HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384"]


def jwt_creds() -> str:
    lines = []
    for alg in ALGS:
        if alg.startswith("HS"):
            lines.append(f"      - {{issuer: iss-{alg}, algorithm: {alg}, secret: {HS_SECRET}}}")
        else:
            key = RSA_KEY if alg.startswith("RS") else (EC256 if alg == "ES256" else EC384)
            block = "\n".join("          " + ln for ln in pem(key).strip().splitlines())
            lines.append(f"      - issuer: iss-{alg}\n        algorithm: {alg}\n"
                         f"        public_key: |\n{block}")
    return "\n".join(lines)


def config(echo) -> str:
    return f"""
services:
  - name: s
    targets: [{{address: {echo.address}}}]
routes:
  - name: key
    match: {{paths: [/key], path_type: prefix}}
    service: s
    plugins:
      - key_auth: {{header: X-Api-Key, query: apikey}}
  - name: keyfwd
    match: {{paths: [/fwd], path_type: prefix}}
    service: s
    plugins:
      - key_auth: {{forward_credentials: true}}
  - name: keyrl
    match: {{paths: [/limited], path_type: prefix}}
    service: s
    plugins:
      - key_auth: {{}}
      - rate_limit: {{limit: 2, window: 1m, key: consumer, scope: node}}
  - name: jwt
    match: {{paths: [/jwt], path_type: prefix}}
    service: s
    plugins:
      - jwt: {{clock_skew: 30s}}
  - name: jwtx
    match: {{paths: [/tok], path_type: prefix}}
    service: s
    plugins:
      - jwt: {{header: X-Token, query: access_token}}
  - name: basic
    match: {{paths: [/basic], path_type: prefix}}
    service: s
    plugins:
      - basic_auth: {{realm: shop}}
consumers:
  - name: alice
    key_auth: [key-abc]
    basic_auth: [{{username: alice, password: wonderland}}]
    jwt:
{jwt_creds()}
  - name: bob
    key_auth: [key-bob]
"""


def upstream_headers(resp) -> dict:
    assert resp.status_code == 200, resp.text
    return resp.json()["headers"]


def test_key_auth_header_query_and_hiding():
    echo = Echo()
    node = Node(config=config(echo), access_log=True)
    r = node.get("/key")
    assert r.status_code == 401 and r.json()["error"] == "missing API key"
    assert r.json()["request_id"]
    r = node.get("/key", headers={"X-Api-Key": "key-wrong"})
    assert r.status_code == 401 and r.json()["error"] == "invalid API key"
    h = upstream_headers(node.get("/key", headers={"X-Api-Key": "key-abc"}))
    assert h["x-consumer"] == "alice" and "x-api-key" not in h
    # A client cannot name itself: its X-Consumer is replaced.
    h = upstream_headers(node.get("/key", headers={"X-Api-Key": "key-bob", "X-Consumer": "alice"}))
    assert h["x-consumer"] == "bob"
    # From the query: the parameter is cut from what the upstream sees.
    r = node.get("/key/x?a=1&apikey=key-abc&b=2")
    assert r.status_code == 200 and r.json()["query"] == "a=1&b=2"
    assert r.json()["headers"]["x-consumer"] == "alice"
    assert node.get("/key?apikey=nope").status_code == 401
    # forward_credentials: the upstream gets the key too.
    h = upstream_headers(node.get("/fwd", headers={"X-Api-Key": "key-bob"}))
    assert h["x-api-key"] == "key-bob" and h["x-consumer"] == "bob"
    # The access log names the consumer and the route.
    wait_until(lambda: '"consumer":"bob"' in node.logs() and '"route":"keyfwd"' in node.logs(),
               10, "the access log line of the forwarded request")
    line = next(ln for ln in node.logs().splitlines() if '"consumer":"bob"' in ln and "keyfwd" in ln)
    entry = json.loads(line[line.index("{"):])
    assert entry["consumer"] == "bob" and entry["route"] == "keyfwd"


def test_rate_limit_keys_on_the_consumer():
    echo = Echo()
    node = Node(config=config(echo))
    alice = [node.get("/limited", headers={"X-Api-Key": "key-abc"}).status_code for _ in range(3)]
    bob = [node.get("/limited", headers={"X-Api-Key": "key-bob"}).status_code for _ in range(3)]
    assert alice == [200, 200, 429] and bob == [200, 200, 429]


def now() -> int:
    return int(time.time())


def bearer(tok: str) -> dict:
    return {"Authorization": f"Bearer {tok}"}


def test_jwt_every_algorithm_and_every_rejection():
    echo = Echo()
    node = Node(config=config(echo))
    for alg in ALGS:
        tok = token(alg, {"iss": f"iss-{alg}", "exp": now() + 60, "sub": "x"})
        for _ in range(2):  # the second one is served from the verified-token cache
            h = upstream_headers(node.get("/jwt", headers=bearer(tok)))
            assert h["x-consumer"] == "alice", alg
            assert "authorization" not in h
    r = node.get("/jwt")
    assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Bearer")

    def refused(tok, why):
        r = node.get("/jwt", headers=bearer(tok))
        assert r.status_code == 401, (why, r.text)
        assert r.json()["error"] == why, r.text

    for alg in ALGS:
        good = token(alg, {"iss": f"iss-{alg}"})
        head, body, sig = good.split(".")
        raw = bytearray(base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4)))
        raw[len(raw) // 2] ^= 0x01
        refused(f"{head}.{body}.{b64u(bytes(raw))}", "bad signature")
    refused(token("HS256", {"iss": "iss-HS256", "exp": now() - 120}), "token expired")
    refused(token("ES256", {"iss": "iss-ES256", "nbf": now() + 300}), "token not yet valid")
    # Inside the 30 s skew both ways: accepted.
    assert node.get("/jwt", headers=bearer(token("HS256", {"iss": "iss-HS256", "exp": now() - 5}))).status_code == 200
    assert node.get("/jwt", headers=bearer(token("RS256", {"iss": "iss-RS256", "nbf": now() + 5}))).status_code == 200
    # alg=none, with and without a signature.
    none = token("HS256", {"iss": "iss-HS256"}, header_alg="none", sig=b"")
    refused(none, "algorithm mismatch")
    # Algorithm confusion: HS256 keyed with the RS256 credential's public PEM.
    confused = token("HS256", {"iss": "iss-RS256"}, secret=pem(RSA_KEY))
    refused(confused, "algorithm mismatch")
    refused(token("HS256", {"iss": "someone-else"}), "unknown issuer")
    refused(token("HS256", {"sub": "no issuer"}), "malformed token")
    refused("not.a.token!", "malformed token")
    refused(token("HS256", {"iss": "iss-HS256"}, secret="wrong-secret"), "bad signature")
    # Another scheme in Authorization is not a bearer token.
    r = node.get("/jwt", headers={"Authorization": "Basic YWxpY2U6d29uZGVybGFuZA=="})
    assert r.status_code == 401 and r.json()["error"] == "missing token"


def test_jwt_from_another_header_or_the_query():
    """A configured header carries the bare token; the query parameter is the
    fallback and is cut from what the upstream sees."""
    echo = Echo()
    node = Node(config=config(echo))
    tok = token("ES384", {"iss": "iss-ES384", "exp": now() + 60})
    h = upstream_headers(node.get("/tok", headers={"X-Token": tok}))
    assert h["x-consumer"] == "alice" and "x-token" not in h
    r = node.get(f"/tok/x?a=1&access_token={tok}")
    assert r.status_code == 200 and r.json()["query"] == "a=1"
    assert node.get("/tok", headers={"X-Token": f"Bearer {tok}"}).status_code == 401
    assert node.get("/tok").status_code == 401


def test_basic_auth_and_no_plain_password_stored():
    echo = Echo()
    node = Node(config=config(echo))
    r = node.get("/basic")
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"].startswith('Basic realm="shop"')
    assert node.get("/basic", auth=("alice", "wrong")).status_code == 401
    assert node.get("/basic", auth=("mallory", "wonderland")).status_code == 401
    for _ in range(2):
        h = upstream_headers(node.get("/basic", auth=("alice", "wonderland")))
        assert h["x-consumer"] == "alice" and "authorization" not in h
    stored = node.admin_get("/config/consumers/alice").json()
    cred = stored["basic_auth"][0]
    assert "password" not in cred and cred["password_hash"].startswith("pbkdf2-sha256$")
    assert "wonderland" not in json.dumps(node.admin_get("/config").json())
    # A consumer added through the API: its password is hashed before storing.
    r = node.admin_put("/config/consumers/carol",
                       json={"basic_auth": [{"username": "carol", "password": "pw-carol"}]})
    assert r.status_code == 200, r.text
    assert "password" not in r.json()["basic_auth"][0]
    wait_until(lambda: node.get("/basic", auth=("carol", "pw-carol")).status_code == 200, 5,
               "carol's new credential to work")
    # The stored hash may be given as is; a malformed one is refused.
    r = node.admin_put("/config/consumers/dave",
                       json={"basic_auth": [{"username": "dave", "password_hash": "md5$abc"}]})
    assert r.status_code == 400 and r.json()["path"] == "basic_auth[0].password_hash"
    r = node.admin_put("/config/consumers/dave",
                       json={"basic_auth": [{"username": "dave", "password_hash": cred["password_hash"]}]})
    assert r.status_code == 200
    wait_until(lambda: node.get("/basic", auth=("dave", "wonderland")).status_code == 200, 5,
               "dave's credential (alice's hash) to work")


def test_bad_auth_config_is_refused_with_a_path():
    echo = Echo()
    node = Node(config=config(echo))
    before = node.admin_get("/config").json()["digest"]
    cases = [
        ("/config/consumers/eve", {"jwt": [{"issuer": "e", "algorithm": "RS256", "secret": "x"}]},
         "jwt[0].public_key"),
        ("/config/consumers/eve", {"jwt": [{"issuer": "e", "algorithm": "none", "secret": "x"}]},
         "jwt[0].algorithm"),
        ("/config/consumers/eve", {"jwt": [{"issuer": "e", "algorithm": "ES256",
                                            "public_key": pem(EC384)}]},
         "jwt[0].public_key"),
        ("/config/consumers/eve", {"key_auth": ["key-abc"]}, "key_auth[0]"),
        ("/config/routes/key", {"match": {"paths": ["/key"]}, "service": "s",
                                "plugins": [{"key_auth": {"header": "bad header"}}]},
         "plugins[0].key_auth.header"),
        ("/config/routes/key", {"match": {"paths": ["/key"]}, "service": "s",
                                "plugins": [{"jwt": {"clock_skew": "1h"}}]},
         "plugins[0].jwt.clock_skew"),
    ]
    for path, body, where in cases:
        r = node.admin_put(path, json=body)
        assert r.status_code == 400, (body, r.text)
        assert r.json()["path"] == where, r.text
    assert node.admin_get("/config").json()["digest"] == before
    r = requests.get(node.url("/key"), headers={"X-Api-Key": "key-abc"}, timeout=5)
    assert r.status_code == 200


def test_seeded_password_hash_is_the_same_on_every_node():
    """Each node hashes the file's plain password itself: the stored objects
    (and so the config digests) must agree, or seeded nodes would never
    converge."""
    echo = Echo()
    conf = config(echo)
    a = Node(name="gw1", config=conf)
    b = Node(name="gw2", config=conf)
    da = a.admin_get("/config").json()
    db = b.admin_get("/config").json()
    assert da["digest"] == db["digest"]
    assert da["consumers"][0]["basic_auth"] == db["consumers"][0]["basic_auth"]


def test_consumers_and_auth_changes_spread_to_every_node():
    """A consumer and an auth plugin put on gw1 are enforced by gw2 and gw3;
    a revoked key stops working everywhere."""
    echo = Echo()
    conf = f"""
services:
  - name: s
    targets: [{{address: {echo.address}}}]
routes:
  - name: open
    match: {{paths: [/], path_type: prefix}}
    service: s
"""
    first = Node(conf, name="gw1")
    nodes = [first] + [Node(conf, name=f"gw{i}", args=["--join", first.gossip]) for i in (2, 3)]
    r = first.admin_put("/config/consumers/zoe", json={"key_auth": ["key-zoe"]})
    assert r.status_code == 200, r.text
    r = first.admin_put("/config/routes/open", json={
        "match": {"paths": ["/"], "path_type": "prefix"}, "service": "s",
        "plugins": [{"key_auth": {}}]})
    assert r.status_code == 200, r.text

    def enforced_everywhere():
        return all(n.get("/x").status_code == 401 and
                   n.get("/x", headers={"X-Api-Key": "key-zoe"}).status_code == 200 for n in nodes)
    wait_until(enforced_everywhere, 10, "every node to require the key and accept zoe's")
    assert first.admin_put("/config/consumers/zoe", json={"key_auth": ["key-zoe-2"]}).status_code == 200

    def revoked_everywhere():
        return all(n.get("/x", headers={"X-Api-Key": "key-zoe"}).status_code == 401 and
                   n.get("/x", headers={"X-Api-Key": "key-zoe-2"}).status_code == 200 for n in nodes)
    wait_until(revoked_everywhere, 10, "the old key to be refused and the new one accepted everywhere")
