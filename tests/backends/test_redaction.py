"""redact_messages: every planted secret becomes a placeholder, typical code is left alone.

``PLANTED`` / ``planted_messages`` are also used by the backend tests, which send them through
the real SDKs to the stub server and search the recorded request bytes.
"""

from __future__ import annotations

import copy
import json
import time

import pytest

from jupyter_devstral.backends.redaction import (
    PLACEHOLDER_RE,
    env_secrets,
    redact_messages,
    secret_name,
)

# Every value a model must never see, by what it is.
PLANTED = {
    "api_key": "sk-live-4f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c",
    "aws_access_key_id": "AKIAIOSFODNN7EXAMPLE",
    "aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "db_password": "Tr0ub4dor&3-horse",
    "github_token": "ghp_1A2b3C4d5E6f7G8h9I0jKlMnOpQrStUvWxYz",
    "jwt": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N",
    "pem_body": "MIIEowIBAAKCAQEAq7BFUpkGp3+LQmlQ4jYKmpmFo5Bvd1XgRmyNc8nbDd",
    "dsn_password": "pg-S3cret-99",
    "bearer": "tok_8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a",
    "env_secret": "envval-Q7w8E9r0T1y2U3i4",
}
PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\n"
    + PLANTED["pem_body"]
    + "\n9f8e7d6c5b4a3928171615141312111009080706050403020100ffeeddcc\n"
    "-----END RSA PRIVATE KEY-----"
)
ENV_NAME = "MY_SERVICE_TOKEN"


def planted_messages() -> list[dict]:
    """A fix prompt with earlier cells and their outputs, full of secrets."""
    p = PLANTED
    earlier = (
        "# cell 1\nimport os, boto3, psycopg2\n"
        f'API_KEY = "{p["api_key"]}"\n'
        f"AWS_ACCESS_KEY_ID = '{p['aws_access_key_id']}'\n"
        f"aws_secret_access_key = '{p['aws_secret_access_key']}'\n"
        f'db_password = "{p["db_password"]}"\n'
        f'conn = psycopg2.connect(host="db", user="ada", password=db_password)\n'
        f'engine = create_engine("postgresql://ada:{p["dsn_password"]}@db.internal:5432/sales")\n'
        f'gh = Github("{p["github_token"]}")\n'
        f'KEY_PEM = """{PEM}"""\n'
        "# cell 2\nprint(API_KEY)\nprint(session_headers)\nprint(os.environ['MY_SERVICE_TOKEN'])\n"
    )
    outputs = (
        f"Out[2]: {p['api_key']}\n"
        f"{{'Authorization': 'Bearer {p['bearer']}', 'X-Session': '{p['jwt']}'}}\n"
        f"{p['env_secret']}\n"
    )
    variables = f"API_KEY: str len 40: '{p['api_key'][:30]}...'\ntoken: str = '{p['jwt']}'"
    return [
        {"role": "system", "content": "You fix failing notebook cells."},
        {"role": "user", "content": f"{earlier}\n\nOutputs:\n{outputs}\n\nVariables:\n{variables}"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": "abcDEF123",
                    "type": "function",
                    "function": {
                        "name": "read_cell",
                        "arguments": json.dumps({"cell_id": "c1", "note": p["github_token"]}),
                    },
                }
            ],
        },
        {
            "role": "tool",
            "tool_call_id": "abcDEF123",
            "name": "read_cell",
            "content": json.dumps({"source": f'db_password = "{p["db_password"]}"'}),
        },
        {"role": "user", "content": "Traceback: KeyError: 'prise' in df['prise']"},
    ]


def secrets_left(data: str) -> list[str]:
    return [name for name, value in PLANTED.items() if value in data]


def test_every_planted_secret_is_replaced_and_placeholders_name_them() -> None:
    messages = planted_messages()
    before = copy.deepcopy(messages)
    out, found = redact_messages(messages, known_secrets={ENV_NAME: PLANTED["env_secret"]})
    sent = json.dumps(out)
    assert secrets_left(sent) == []
    assert messages == before  # the caller's messages are untouched
    text = out[1]["content"]
    assert 'API_KEY = "<secret:API_KEY>"' in text
    assert "Out[2]: <secret:API_KEY>" in text  # the same value elsewhere: the same placeholder
    assert "AWS_ACCESS_KEY_ID = '<secret:AWS_ACCESS_KEY_ID>'" in text
    assert "aws_secret_access_key = '<secret:aws_secret_access_key>'" in text
    assert 'db_password = "<secret:db_password>"' in text
    assert "password=db_password" in text  # a variable reference is no secret value
    assert "postgresql://ada:<secret:password_in_url>@db.internal:5432/sales" in text
    assert 'Github("<secret:github_token>")' in text
    assert 'KEY_PEM = """<secret:private_key>"""' in text
    assert "'Bearer <secret:bearer_token>'" in text
    assert "\n<secret:MY_SERVICE_TOKEN>\n" in text
    # the JWT was first named by a dict key: that name, wherever it occurs
    assert "'X-Session': '<secret:X-Session>'" in text
    assert "token: str = '<secret:X-Session>'" in text
    assert "os.environ['MY_SERVICE_TOKEN']" in text  # names stay
    assert json.loads(out[2]["tool_calls"][0]["function"]["arguments"]) == {
        "cell_id": "c1",
        "note": "<secret:github_token>",
    }
    assert json.loads(out[3]["content"]) == {"source": 'db_password = "<secret:db_password>"'}
    assert out[4] == messages[4] and out[0] == messages[0]
    assert found["<secret:API_KEY>"] == "openai_key"
    assert found["<secret:db_password>"] == "secret_variable"
    assert found["<secret:MY_SERVICE_TOKEN>"] == "known_secret"
    assert all(PLACEHOLDER_RE.fullmatch(p) for p in found)
    assert not any(value in json.dumps(found) for value in PLANTED.values())


def test_deterministic_and_idempotent() -> None:
    known = {ENV_NAME: PLANTED["env_secret"]}
    first = json.dumps(redact_messages(planted_messages(), known_secrets=known)[0])
    second = json.dumps(redact_messages(planted_messages(), known_secrets=known)[0])
    assert first == second
    again, found = redact_messages(json.loads(first), known_secrets=known)
    assert json.dumps(again) == first and found == {}


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("key id AKIAIOSFODNN7EXAMPLE in the log", "aws_access_key_id"),
        ("temporary ASIAY34FZKBOKMUTVV7A", "aws_access_key_id"),
        ("aws creds: wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "aws_secret_access_key"),
        ("openai sk-proj-Ab12Cd34Ef56Gh78Ij90KlMnOp", "openai_key"),
        ("mistral sk-Ab12Cd34Ef56Gh78Ij90KlMnOpQr", "openai_key"),
        ("pat github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz", "github_token"),
        ("gho_16C7e42F292c6912E7710c838347Ae178B4a and more", "github_token"),
        ("slack xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOp", "slack_token"),
        ("google AIzaSyA-1234567890abcdefghijklmnopqrstu", "google_api_key"),
        ("stripe sk_live_4eC39HqLyjWDarjtT1zdp7dc", "stripe_key"),
        ("stripe rk_live_4eC39HqLyjWDarjtT1zdp7dc", "stripe_key"),
        ("hf hf_AbCdEfGhIjKlMnOpQrStUvWxYz01234567", "huggingface_token"),
        ("curl -H 'Authorization: Bearer abcDEF123456ghiJKL789'", "bearer_token"),
        ("Authorization: Basic dXNlcjpwYXNzd29yZA==", "authorization"),
        ("redis://:p4ssw0rd@cache:6379/0", "password_in_url"),
    ],
)
def test_patterns_in_any_text(text: str, kind: str) -> None:
    out, found = redact_messages([{"role": "user", "content": text}])
    assert list(found.values()) == [kind]
    assert f"<secret:{kind}>" in out[0]["content"]


@pytest.mark.parametrize(
    ("line", "placeholder"),
    [
        ('client = Mistral(api_key="Zq9Xv3Lm-2Pw8Rt5Ys1Ku7Jn4")', "api_key"),
        ("cfg = {'password': 'hunter22'}", "password"),
        ('{"SecretAccessKey": "abc/def+ghi123"}', "SecretAccessKey"),
        ('os.environ["OPENAI_API_KEY"] = "plainvalue99"', "OPENAI_API_KEY"),
        ('os.environ.setdefault("HF_TOKEN", "plainvalue99")', "HF_TOKEN"),
        ("self.authToken = 'abcd-efgh'", "authToken"),
        ("DATABASE_DSN: str = 'mysql://u@h/db'", "DATABASE_DSN"),
        ("export GITHUB_TOKEN=plainvalue99", "GITHUB_TOKEN"),
        ("%env DB_PASSWORD=hunter22", "DB_PASSWORD"),
        ("X-Api-Key: 7f3a9c2e1b4d", "X-Api-Key"),
        ("token = 'a8f7e6d5c4b3a291'", "token"),
    ],
)
def test_name_rule(line: str, placeholder: str) -> None:
    out, found = redact_messages([{"role": "user", "content": line}])
    assert f"<secret:{placeholder}>" in out[0]["content"], out[0]["content"]


TYPICAL_CODE = """\
import numpy as np
import pandas as pd
from transformers import AutoTokenizer
tokenizer = AutoTokenizer.from_pretrained("gpt2")
max_tokens = 800
n_tokens = len(tokenizer("hello world")["input_ids"])
keys = list(d)
key = "region"
sort_key = "customer_id"
pad_token = "[PAD]"
eos_token = "</s>"
author = "Ada"
monkey = "banana"
password_min_length = 12
api_key_env = "MISTRAL_API_KEY"
token_url = "https://oauth2.example.com/token"
session = requests.Session()
df = pd.read_csv("data/sales_2024.csv", parse_dates=["date"])
summary = df.groupby(key).agg(total=("price", "sum"))
arr = np.random.default_rng(42).normal(size=(3, 4))
task-0123456789abcdefghijklmno
model = train(X_train, y_train, random_state=1234, lr=3e-4)
url = "https://example.com:8443/path?q=1"
commit = "da39a3ee5e6b4b0d3255bfef95601890afd80709"
print(df.head())
"""


def test_no_false_positives_on_typical_data_science_code() -> None:
    messages = [{"role": "user", "content": TYPICAL_CODE}]
    out, found = redact_messages(messages)
    assert found == {} and out == messages


def test_short_values_only_where_found_long_ones_everywhere() -> None:
    source = 'password = "test"\ndef test_it():\n    assert login("ada", "test")'
    out, _ = redact_messages([{"role": "user", "content": source}])
    assert out[0]["content"].startswith('password = "<secret:password>"\ndef test_it')
    assert 'login("ada", "test")' in out[0]["content"]


def test_two_values_of_one_name_get_numbered_placeholders() -> None:
    text = 'API_KEY = "first-value-123"\nAPI_KEY = "second-value-456"'
    out, found = redact_messages([{"role": "user", "content": text}])
    assert out[0]["content"] == 'API_KEY = "<secret:API_KEY>"\nAPI_KEY = "<secret:API_KEY_2>"'
    assert set(found) == {"<secret:API_KEY>", "<secret:API_KEY_2>"}


def test_known_secrets_as_values_and_content_parts() -> None:
    messages = [
        {"role": "user", "content": [{"type": "text", "text": "key is zzzz-yyyy-xxxx-1234"}]}
    ]
    out, found = redact_messages(messages, known_secrets=["zzzz-yyyy-xxxx-1234"])
    assert out[0]["content"][0]["text"] == "key is <secret:known_secret>"
    assert messages[0]["content"][0]["text"] == "key is zzzz-yyyy-xxxx-1234"


def test_env_secrets_picks_secret_names_not_paths() -> None:
    environ = {
        "MISTRAL_API_KEY": "Zq9Xv3Lm2Pw8Rt5Ys1Ku7Jn4",
        "GOOGLE_APPLICATION_CREDENTIALS": "/home/ada/creds.json",
        "JPY_SESSION_NAME": "notebooks/sales.ipynb",
        "SESSION_KEY": "short",
        "TOKEN": "a8f7e6d5c4b3a291",
        "PATH": "/usr/bin",
        "HOME": "/home/ada",
        "LANG": "C.UTF-8",
    }
    assert env_secrets(environ) == {
        "MISTRAL_API_KEY": "Zq9Xv3Lm2Pw8Rt5Ys1Ku7Jn4",
        "TOKEN": "a8f7e6d5c4b3a291",
    }


@pytest.mark.parametrize(
    ("name", "strength"),
    [
        ("API_KEY", "strong"),
        ("db_password", "strong"),
        ("aws_secret_access_key", "strong"),
        ("authToken", "strong"),
        ("GITHUB_TOKEN", "strong"),
        ("mypassword", "strong"),
        ("token", "weak"),
        ("sort_key", "weak"),
        ("keys", None),
        ("monkey", None),
        ("author", None),
        ("tokenizer", None),
        ("max_tokens", None),
        ("n_tokens", None),
        ("secretary", None),
    ],
)
def test_secret_name(name: str, strength: str | None) -> None:
    assert secret_name(name) == strength


def test_placeholder_regex() -> None:
    assert PLACEHOLDER_RE.search('x = "<secret:API_KEY_2>"')
    assert not PLACEHOLDER_RE.search("x = '<secret>'")


def test_a_30_kb_prompt_takes_a_few_milliseconds() -> None:
    chunk = TYPICAL_CODE + json.dumps(planted_messages())
    messages = [{"role": "user", "content": chunk * (30_000 // len(chunk) + 1)}]
    redact_messages(messages)
    times = []
    for _ in range(5):
        start = time.perf_counter()
        redact_messages(messages)
        times.append(time.perf_counter() - start)
    assert min(times) < 0.01  # about 1 ms on an idle machine; slack for a loaded CI box


def test_words_shaped_like_keys_are_not_keys() -> None:
    text = (
        "a sk-learn-compatible-estimator-wrapper for bearer authentication_required_flows\n"
        "curl -H 'Authorization: Token placeholder'"
    )
    assert redact_messages([{"role": "user", "content": text}])[1] == {}


def test_a_short_password_with_a_digit_is_hidden_everywhere_as_a_whole_word() -> None:
    messages = [
        {"role": "user", "content": 'db_password = "hunter2"\nconnect(pw=db_password)'},
        {"role": "tool", "content": "login failed for hunter2; retry hunter22 or xhunter2"},
    ]
    out, _ = redact_messages(messages)
    assert out[0]["content"].startswith('db_password = "<secret:db_password>"')
    assert out[1]["content"] == (
        "login failed for <secret:db_password>; retry hunter22 or xhunter2"
    )


@pytest.mark.parametrize(
    "text, secret",
    [
        ('conn = psycopg2.connect("host=db user=ada password=Pg9-s3cret dbname=x")', "Pg9-s3cret"),
        ("Server=db;Database=x;Uid=ada;Pwd=Odbc-77x9q;", "Odbc-77x9q"),
        (
            "GET https://api.example.com/v1/items?limit=5&access_token=Zq81xLw0pT55aa",
            "Zq81xLw0pT55aa",
        ),
        (
            "https://b.s3.amazonaws.com/k?X-Amz-Signature=8f7e6d5c4b3a29180f7e6d5c",
            "8f7e6d5c4b3a29180f7e6d5c",
        ),
        (
            "redirect?next=%3Dsk-live-4f9a8b7c6d5e4f3a2b1c0d9e8f",
            "sk-live-4f9a8b7c6d5e4f3a2b1c0d9e8f",
        ),
        ('API_KEY = ("sk-live-4f9a8b7c6d"\n           "5e4f3a2b1c0d9e8f7a")', "5e4f3a2b1c0d9e8f7a"),
        ("!curl -u ada:Curl-pw-8812 https://example.com", "Curl-pw-8812"),
        ('r = requests.get(url, auth=("ada", "Basic-Pw-4471"))', "Basic-Pw-4471"),
        ("!mysql -u root -pMy5ql-Pass db", "My5ql-Pass"),
        ("!tool --api-key Qx7-abc-99871 run", "Qx7-abc-99871"),
        ("password:\n  Yaml-S3cret-1", "Yaml-S3cret-1"),
        ("https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXXXXXXXXXX", "XXXXXXXXXXXXXXXX"),
        (
            "sentry_sdk.init('https://4f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c@o1.ingest.sentry.io/1')",
            "4f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c",
        ),
    ],
)
def test_secrets_in_connection_strings_queries_commands_and_arguments(
    text: str, secret: str
) -> None:
    out, found = redact_messages([{"role": "user", "content": text}])
    assert secret not in out[0]["content"], out[0]["content"]
    assert found and "<secret:" in out[0]["content"]


@pytest.mark.parametrize(
    "text",
    [
        "df = pd.read_csv(path, sep=';')\nmodel.fit(X, y)",
        "!pip install --index-url https://pypi.org/simple pandas",
        "!tool --secret-file creds.json --password-stdin",
        "url = 'https://example.com/search?q=hello&page=2'",
        "task-0123456789abcdef0123456789abcdef0123 and risk-adjusted-2024",
        'conn = connect(host="db", user="ada", password=db_password)',
        'login(user, "password")',
    ],
)
def test_new_shapes_leave_ordinary_code_alone(text: str) -> None:
    out, found = redact_messages([{"role": "user", "content": text}])
    assert found == {} and out[0]["content"] == text


PW = "Tr0ub4dor3xyzq"
HEX_KEY = "8f3a9b7c6d5e4f3a2b1c"
DATAFRAME = (  # print(df), as pandas prints it
    "    user        password  token               api_key\n"
    f"0  alice  {PW}  apple  {HEX_KEY}\n"
    "1    bob       hunter2 x   pear                 short\n"
)
DATAFRAME_NAMED_INDEX = (  # print(df.set_index("user"))
    "             password  token\n"
    "user                        \n"
    f"alice  {PW}  apple\n"
    "bob         hunter2 x   pear\n"
)
DATAFRAME_HTML = (  # df.to_html()
    '<table border="1" class="dataframe">\n  <thead>\n'
    '    <tr style="text-align: right;">\n      <th></th>\n      <th>user</th>\n'
    "      <th>password</th>\n      <th>token</th>\n    </tr>\n  </thead>\n  <tbody>\n"
    f"    <tr>\n      <th>0</th>\n      <td>alice</td>\n      <td>{PW}</td>\n"
    "      <td>apple</td>\n    </tr>\n    <tr>\n      <th>1</th>\n      <td>bob</td>\n"
    "      <td>hunter2 x</td>\n      <td>pear</td>\n    </tr>\n  </tbody>\n</table>"
)


@pytest.mark.parametrize(
    ("text", "secret", "placeholder"),
    [
        # f-strings, any prefix case
        (f'password = f"{PW}"', PW, "password"),
        (f'connect(password=f"{PW}")', PW, "password"),
        (f'API_KEY = f"{HEX_KEY}"', HEX_KEY, "API_KEY"),
        (f'API_KEY = rf"{HEX_KEY}"', HEX_KEY, "API_KEY"),
        (f'API_KEY = FR"{HEX_KEY}"', HEX_KEY, "API_KEY"),
        (f"cfg = {{'password': F'{PW}'}}", PW, "password"),
        ('password = f"Tr0ub{n}dor3xyzq"', "dor3xyzq", "password"),
        (f'auth=("ada", f"{PW}")', PW, "http_auth_password"),
        # triple quotes
        (f'API_KEY = """{HEX_KEY}"""', HEX_KEY, "API_KEY"),
        (f"API_KEY = '''{HEX_KEY}'''", HEX_KEY, "API_KEY"),
        (f'API_KEY = """\n{HEX_KEY}\n"""\nprint(API_KEY)\n{HEX_KEY}', HEX_KEY, "API_KEY"),
        (f"DB_PASSWORD: str = f'''\n  {PW}'''", PW, "DB_PASSWORD"),
        (f'cfg["password"] = """{PW}"""', PW, "password"),
        # walrus
        (f'(api_key := "{HEX_KEY}")', HEX_KEY, "api_key"),
        ('if (token := "a8f7e6d5c4b3a291"):', "a8f7e6d5c4b3a291", "token"),
        # escaped quotes and backslashes: the value goes on to the real closing quote
        ('password = "Tr0ub4\\"dor3xyzq"', "dor3xyzq", "password"),
        ("password = 'Tr0ub4\\'dor3xyzq'", "dor3xyzq", "password"),
        ('password = "ab\\"cdefgh12"', "cdefgh12", "password"),
        ('password = "Tr0ub4\\\\dor3xyzq"', "dor3xyzq", "password"),
        ('password = "it\'s-Tr0ub4dor"', "s-Tr0ub4dor", "password"),
        # .netrc and .pgpass
        ("machine api.example.com login alice password Xy7-netrc-pw", "Xy7-netrc-pw", "netrc"),
        (
            "machine api.example.com\n  login alice\n  password Xy7-netrc-pw\n",
            "Xy7-netrc-pw",
            "netrc",
        ),
        ("machine h password Xy7-netrc-pw login alice", "Xy7-netrc-pw", "netrc"),
        ("default login alice password Xy7-netrc-pw", "Xy7-netrc-pw", "netrc"),
        (
            json.dumps({"out": "machine h.example.com\n  login alice\n  password Xy7-netrc-pw\n"}),
            "Xy7-netrc-pw",
            "netrc",
        ),
        ("db.example.com:5432:sales:ada:Pg-pass-7781", "Pg-pass-7781", "pgpass"),
        ("localhost:*:*:postgres:Pg-pass-7781\n", "Pg-pass-7781", "pgpass"),
        # token shapes
        ("glpat-AbCdEf1234567890xYzW", "AbCdEf1234567890xYzW", "gitlab_token"),
        ("npm_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8", "a1B2c3D4e5F6g7H8i9J0", "npm_token"),
        (
            "pypi-AgEIcHlwaS5vcmcCJDU1ZTM0YjRlLWQ5ZTYtNDg4Ny1hYjE4LWNmY2YzOTM1ZTBmMAACKlszLCJlYjE",
            "CJDU1ZTM0YjRlLWQ5ZTYtNDg4Ny1hYjE4",
            "pypi_token",
        ),
        (
            "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",
            "TwL2iGABf9DHoTf",
            "sendgrid_key",
        ),
        ("twilio SK2c9f1a0b3e4d5c6b7a8f9e0d1c2b3a4f", "2c9f1a0b3e4d5c6b7a8f9e0d", "twilio_key"),
        (
            "anthropic sk-ant-api03-AbCdEf1234567890AbCdEf1234567890-XyZ",
            "AbCdEf1234567890AbCdEf",
            "anthropic_key",
        ),
        (
            "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=Eby8vdM02xNOcqFlqUwJPLl"
            "mEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;EndpointSuffix=x",
            "Eby8vdM02xNOcqFlqUwJPLl",
            "azure_storage_key",
        ),
        (  # a GCP service-account key file, as JSON text
            '{"type": "service_account", "private_key": "-----BEGIN PRIVATE KEY-----\\nMIIEvQIB'
            'ADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\\n-----END PRIVATE KEY-----\\n"}',
            "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7",
            "private_key",
        ),
    ],
)
def test_literal_forms_key_files_and_token_shapes(text: str, secret: str, placeholder: str) -> None:
    out, found = redact_messages([{"role": "user", "content": text}])
    assert secret not in out[0]["content"], out[0]["content"]
    assert f"<secret:{placeholder}" in out[0]["content"], out[0]["content"]
    assert found
    assert redact_messages(out) == (out, {})  # idempotent


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f'user, password = "alice", "{PW}"', 'user, password = "alice", "<secret:password>"'),
        (f'password, user = "{PW}", "alice"', 'password, user = "<secret:password>", "alice"'),
        (
            f'(user, password) = ("alice", "{PW}")',
            '(user, password) = ("alice", "<secret:password>")',
        ),
        (
            f'self.user, self.password = "alice", "{PW}"',
            'self.user, self.password = "alice", "<secret:password>"',
        ),
        (
            f'user, password = get("a", "b"), "{PW}"',
            'user, password = get("a", "b"), "<secret:password>"',
        ),
        ('user, password = "alice", pw', 'user, password = "alice", pw'),
    ],
)
def test_tuple_assignment_pairs_targets_and_values(text: str, expected: str) -> None:
    out, _ = redact_messages([{"role": "user", "content": text}])
    assert out[0]["content"] == expected


@pytest.mark.parametrize(
    "text",
    [
        DATAFRAME,
        DATAFRAME_NAMED_INDEX,
        DATAFRAME_HTML,
        "Out[3]:\n" + DATAFRAME,
        json.dumps({"output": DATAFRAME}),  # a tool result as JSON: lines end in \\n
        json.dumps({"output": "Out[3]:\n" + DATAFRAME_NAMED_INDEX}),
    ],
)
def test_dataframe_cells_under_a_secret_column(text: str) -> None:
    out, found = redact_messages([{"role": "user", "content": text}])
    content = out[0]["content"]
    assert PW not in content and HEX_KEY not in content and "hunter2 x" not in content
    assert "<secret:password>" in content
    assert "alice" in content and "apple" in content and "pear" in content  # other columns
    assert set(found.values()) == {"secret_variable"}
    assert redact_messages(out) == (out, {})


ORDINARY_CODE = """\
token_count = len(tokens)
label = f"{name}: {value}"
print(f"token: {token}")
password = f"{user}:{pw}"
x, y = "alpha", "beta"
key, value = "region", "north"
tokenizer.pad_token, tokenizer.eos_token = "[PAD]", "</s>"
def f(user, password, timeout="30"):
    return token
print("machine learning password reset")
elapsed = "12:30:45:123:4567"
addr = "fe80:0000:0000:0000:abcd"
sha = "8f3a9b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f10"
stripe.publishable = "pk_live_4eC39HqLyjWDarjtT1zdp7dc"
    Parameters
    token
        the token to use
    assert not config.secrets
    assert "DEVSTRAL_LOCAL_ONLY" in text
cells = [
    "for i in tqdm(range(3)):\\n    pass",
    "env.update(lr=0.01)\\nprint(env)",
]
   word   token
0  the    quick
1  brown    fox
"""


def test_no_false_positives_on_close_ordinary_lines() -> None:
    messages = [{"role": "user", "content": ORDINARY_CODE}]
    out, found = redact_messages(messages)
    assert found == {} and out == messages
