#!/usr/bin/env python3
# Writes the seed corpora (tests/fuzz/corpus/<target>/): small valid inputs, each built by hand as the bytes a peer
# would send. Re-run after changing a target's input format; the fuzzer's own findings are never written here.
import base64
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def u32(n):
    return struct.pack(">I", n)


def i32(n):
    return struct.pack(">i", n)


def u16(n):
    return struct.pack(">H", n)


def msg(tag, body):
    return tag + u32(len(body) + 4) + body


def cstr(s):
    return s + b"\0"


def startup(params, version=196608):
    body = u32(version) + b"".join(cstr(k) + cstr(v) for k, v in params) + b"\0"
    return u32(len(body) + 4) + body


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


# --- fuzz_startup -------------------------------------------------------------------------------
write("fuzz_startup", "startup_user_db", startup([(b"user", b"app"), (b"database", b"appdb")]))
write("fuzz_startup", "startup_many", startup([(b"user", b"app"), (b"database", b"appdb"),
                                               (b"application_name", b"psql"), (b"client_encoding", b"UTF8"),
                                               (b"options", b"-c search_path=x"), (b"_pq_.test", b"1")]))
write("fuzz_startup", "startup_v3_2", startup([(b"user", b"app")], version=196610))
write("fuzz_startup", "ssl_request", u32(8) + u32(80877103))
write("fuzz_startup", "gssenc_request", u32(8) + u32(80877104))
write("fuzz_startup", "cancel_request", u32(16) + u32(80877102) + u32(4242) + u32(0xDEADBEEF))

# --- fuzz_backend_messages: selector byte + body ------------------------------------------------
B = "fuzz_backend_messages"
write(B, "auth_ok", b"R" + u32(0))
write(B, "auth_cleartext", b"R" + u32(3))
write(B, "auth_md5", b"R" + u32(5) + b"\x01\x02\x03\x04")
write(B, "auth_sasl", b"R" + u32(10) + cstr(b"SCRAM-SHA-256-PLUS") + cstr(b"SCRAM-SHA-256") + b"\0")
write(B, "auth_sasl_continue", b"R" + u32(11) +
      b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
write(B, "auth_sasl_final", b"R" + u32(12) + b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
write(B, "parameter_status", b"S" + cstr(b"server_version") + cstr(b"15.4"))
write(B, "backend_key_data", b"K" + u32(12345) + u32(0x01020304))
write(B, "ready_for_query", b"ZT")
write(B, "error_response", b"E" + b"SERROR\0VERROR\0C42P01\0Mrelation \"x\" does not exist\0P15\0Fparse_relation.c\0"
      b"L1392\0RparserOpenTable\0\0")
write(B, "notice_response", b"N" + b"SNOTICE\0VNOTICE\0C00000\0Mhello\0Ddetail\0Hhint\0\0")
write(B, "negotiate_protocol_version", b"v" + u32(0) + u32(1) + cstr(b"_pq_.unknown"))
write(B, "command_complete", b"C" + cstr(b"SELECT 3"))
write(B, "row_description", b"T" + u16(2) + cstr(b"id") + u32(16384) + u16(1) + u32(23) + u16(4) + i32(-1) + u16(0)
      + cstr(b"name") + u32(0) + u16(0) + u32(25) + u16(0xffff) + i32(-1) + u16(0))
write(B, "data_row", b"D" + u16(3) + i32(1) + b"7" + i32(-1) + i32(5) + b"hello")
write(B, "password_message", b"p" + cstr(b"md5a3556571e93b0d20722ba62be61e8c2d"))
write(B, "sasl_initial_response", b"i" + cstr(b"SCRAM-SHA-256") + i32(32) + b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO")
write(B, "query", b"Q" + cstr(b"SELECT 1"))

# --- fuzz_framing: 6 control bytes (policy, options, cut1, cut2) + a message stream ----------------
stream = (msg(b"R", u32(0)) + msg(b"S", cstr(b"TimeZone") + cstr(b"UTC")) + msg(b"K", u32(1) + u32(2))
          + msg(b"Z", b"I"))
write("fuzz_framing", "login_stream", b"\x00\x00\x00\x07\x00\x0e" + stream)
query_stream = (msg(b"T", u16(1) + cstr(b"x") + u32(0) + u16(0) + u32(25) + u16(0xffff) + i32(-1) + u16(0))
                + msg(b"D", u16(1) + i32(2) + b"ok") + msg(b"C", cstr(b"SELECT 1")) + msg(b"Z", b"I"))
write("fuzz_framing", "query_stream_inspect_small", b"\x80\x00\x00\x03\x00\x20" + query_stream)
write("fuzz_framing", "client_stream", b"\x01\x02\x00\x09\x00\x04" + msg(b"Q", cstr(b"BEGIN")) +
      msg(b"P", cstr(b"s1") + cstr(b"SELECT $1") + u16(0)) + msg(b"S", b"") + msg(b"X", b""))
write("fuzz_framing", "startup_then_ssl", b"\x00" * 6 + u32(8) + u32(80877103) + startup([(b"user", b"app")]))
write("fuzz_framing", "partial_big_copy", b"\x02\x00\x00\x02\x00\x03" + b"d" + u32(100000) + b"copy data...")

# --- fuzz_scram: mode byte + text -----------------------------------------------------------------
NONCE = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
write("fuzz_scram", "server_rfc7677", "sSCRAM-SHA-256\nn,,n=user,r=rOprNGfwEbeRWgbNEkqO\n"
      "c=biws,r=" + NONCE + ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
write("fuzz_scram", "server_plus", "bSCRAM-SHA-256-PLUS\np=tls-server-end-point,,n=,r=abcdefgh\n"
      "c=" + base64.b64encode(b"p=tls-server-end-point,," + b"\x5a" * 32).decode() + ",r=abcdefgh"
      "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
write("fuzz_scram", "server_y_flag", "sSCRAM-SHA-256\ny,,n=,r=xyz\nc=eSws,r=xyz%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=AA==")
write("fuzz_scram", "client_rfc7677", "c" "r=" + NONCE + ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096\n"
      "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
write("fuzz_scram", "client_error", "cr=" + NONCE + ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096\ne=invalid-proof")
write("fuzz_scram", "client_password_i2", "wr=" + NONCE + ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=2\nv=AAAA")
write("fuzz_scram", "verifier", "vSCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$"
      "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=")

# --- fuzz_users_file ------------------------------------------------------------------------------
write("fuzz_users_file", "mixed", '"app" "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$'
      'WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="\n'
      '"legacy" "md5a3556571e93b0d20722ba62be61e8c2d"\n; a comment\n# another\n\n'
      '"plain" "pencil"\n')
write("fuzz_users_file", "escapes", '"we""ird" "pa""ss" trailing words ignored\r\n"x" ""\n')
write("fuzz_users_file", "errors", 'app "secret"\n"unterminated\n"dup" "a"\n"dup" "b"\n"only"\n')

# --- fuzz_config ----------------------------------------------------------------------------------
write("fuzz_config", "minimal.toml", '[tls]\nmode = "disable"\n\n[databases.appdb]\n'
      'dsn = "postgresql://localhost:5432/appdb"\n')
write("fuzz_config", "full.toml", '''[server]
listen = ["0.0.0.0:6432", "[::]:6432"]
workers = 2
max_client_connections = 100
client_login_timeout = "60s"
client_idle_timeout = 0
shutdown_timeout = "30s"

[tls]
mode = "disable"
min_protocol = "TLSv1.3"

[auth]
method = "md5"

[admin]
users = ["admin"]
stats_users = ["stats"]

[pool]
mode = "session"
size = 5
max_overflow = 2
min_idle = 1
timeout = "500ms"
idle_timeout = "10m"
max_lifetime = "1h"
pre_ping = "0"
reset_query = "DISCARD ALL"
session_state = "error"
max_prepared_statements = 0

[databases.appdb]
dsn = "host=db1,db2 port=5432,5433 dbname=appdb user=app"
password = "${PGWEIR_PASSWORD}"
size = 30

[databases."*"]
dsn = "${DSN:-postgresql://localhost:5432}"

[users.backup]
mode = "statement"

[metrics]
listen = ""

[log]
level = "debug"
format = "json"
''')
write("fuzz_config", "errors.toml", '[pool]\nsize = 0\nmode = "sesion"\ntimeout = "30"\nunknown_key = 1\n'
      '[databases.x]\npassword = "${UNSET}"\n')
write("fuzz_config", "inline.toml", 'tls = { mode = "disable" }\ndatabases = { a = { dsn = "dbname=a" } }\n'
      'pool.size = 3\n')

# --- fuzz_hba -------------------------------------------------------------------------------------
write("fuzz_hba", "typical", '# TYPE DATABASE USER ADDRESS METHOD\n'
      'local   all      all                      trust\n'
      'host    appdb    app      10.0.0.0/8      scram-sha-256\n'
      'hostssl all      +admins  ::1/128         cert clientcert=verify-full clientname=DN\n'
      'host    "all"    app,backup 192.168.1.0 255.255.255.0 md5\n'
      'hostnossl replication all all reject\n')
write("fuzz_hba", "errors", 'host all all example.com trust\nlocal all all peer\nhost all all 10.0.0.1/33 md5\n'
      'bogus\n')

# --- fuzz_console: options byte + query -----------------------------------------------------------
for name, q in [("show_pools", "SHOW POOLS;"), ("show_stats", "show stats"), ("pause_db", "PAUSE appdb"),
                ("kill_client", "KILL_CLIENT 0x2a"), ("set", "SET application_name = 'psql'"),
                ("shutdown", "SHUTDOWN WAIT_FOR_CLIENTS"), ("two", "SHOW HELP; SHOW VERSION"),
                ("quoted", 'RECONNECT "app""db"')]:
    write("fuzz_console", name, "\x00" + q)
write("fuzz_console", "reload_fails", "\x01RELOAD")
