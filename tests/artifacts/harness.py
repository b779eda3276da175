"""Runs the built functions as Lambda would, against the synthesized stack emulated by moto.

`EmulatedStack` creates every table, bucket, queue and secret the CloudFormation template
declares in moto's server (named by logical id), resolves the template's `Ref`, `Fn::GetAtt` and
`Fn::Join` to them, and so gives each function the environment and IAM statements the template
gives it.
`LambdaProcess` starts a function from its built artifact in a fresh interpreter
(child_runtime.py) with only /var/task, /opt/python and the runtime's boto3 on its path.
`Policy` evaluates AWS calls against a role's statements: Allow/Deny, action and resource
wildcards (conditions are not evaluated: none of the templates' statements has one).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import sysconfig
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import boto3

CHILD = Path(__file__).with_name("child_runtime.py")
REGION = "eu-west-1"
ACCOUNT = "123456789012"  # moto's
DUMMY_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}


def base_python() -> str:
    """The interpreter under the venv: with -I -S it sees the stdlib and nothing installed."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    return str(Path(sys.base_prefix) / "bin" / f"python{version}")


# --- the stack in moto -------------------------------------------------------------------------


@dataclass
class EmulatedStack:
    template: dict[str, Any]
    endpoint: str
    names: dict[str, str] = field(default_factory=dict)
    arns: dict[str, str] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)
    attributes: dict[tuple[str, str], str] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            region_name=REGION,
            endpoint_url=self.endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    @property
    def resources(self) -> dict[str, Any]:
        resources: dict[str, Any] = self.template["Resources"]
        return resources

    def create(self) -> EmulatedStack:
        for logical, resource in self.resources.items():
            kind, props = resource["Type"], resource.get("Properties", {})
            if kind == "AWS::DynamoDB::Table":
                self._table(logical, props)
            elif kind == "AWS::S3::Bucket":
                name = logical.lower()
                self.client("s3").create_bucket(
                    Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION}
                )
                self._named(logical, name, f"arn:aws:s3:::{name}")
            elif kind == "AWS::SQS::Queue":
                url = self.client("sqs").create_queue(QueueName=logical)["QueueUrl"]
                self._named(logical, logical, f"arn:aws:sqs:{REGION}:{ACCOUNT}:{logical}")
                self.refs[logical] = url
                self.attributes[(logical, "QueueUrl")] = url
                self.attributes[(logical, "QueueName")] = logical
            elif kind == "AWS::OpenSearchService::Domain":
                name = logical.lower()[:28]
                self._named(logical, name, f"arn:aws:es:{REGION}:{ACCOUNT}:domain/{name}")
                self.attributes[(logical, "DomainEndpoint")] = "opensearch.invalid"
            elif kind == "AWS::SecretsManager::Secret":
                arn = self.client("secretsmanager").create_secret(
                    Name=logical, SecretString=json.dumps({"placeholder": "not-a-key"})
                )["ARN"]
                self._named(logical, logical, arn)
                self.refs[logical] = arn
        return self

    def _named(self, logical: str, name: str, arn: str) -> None:
        self.names[logical], self.arns[logical], self.refs[logical] = name, arn, name
        self.attributes[(logical, "Arn")] = arn

    def _table(self, logical: str, props: dict[str, Any]) -> None:
        args: dict[str, Any] = {
            "TableName": logical,
            "KeySchema": props["KeySchema"],
            "AttributeDefinitions": props["AttributeDefinitions"],
            "BillingMode": "PAY_PER_REQUEST",
        }
        if props.get("GlobalSecondaryIndexes"):
            args["GlobalSecondaryIndexes"] = [
                {k: v for k, v in index.items() if k != "ProvisionedThroughput"}
                for index in props["GlobalSecondaryIndexes"]
            ]
        self.client("dynamodb").create_table(**args)
        self._named(logical, logical, f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{logical}")

    def resolve(self, value: Any) -> Any:
        """A template value with intrinsic functions replaced by the moto resources."""
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if "Ref" in value:
            name = value["Ref"]
            pseudo = {
                "AWS::Region": REGION,
                "AWS::AccountId": ACCOUNT,
                "AWS::Partition": "aws",
                "AWS::URLSuffix": "amazonaws.com",
            }
            return pseudo.get(name) or self.refs.get(name, name)
        if "Fn::GetAtt" in value:
            logical, attribute = value["Fn::GetAtt"]
            return self.attributes.get((logical, attribute), f"unresolved:{logical}.{attribute}")
        if "Fn::Join" in value:
            separator, parts = value["Fn::Join"]
            return separator.join(str(self.resolve(p)) for p in parts)
        return {k: self.resolve(v) for k, v in value.items()}

    # Resources are found by what they are and what points at them (an API route's
    # integration, a queue's event source mapping, the state machine's substitutions), never by
    # logical-id spelling, which changes whenever a construct is renamed or moved.

    def of_type(self, kind: str, among: Iterable[str] | None = None) -> str:
        """The logical id of the one resource of type `kind` (among the ids given, if any)."""
        names = self.resources if among is None else among
        (logical,) = [n for n in names if self.resources.get(n, {}).get("Type") == kind]
        return logical

    def api_function(self, method: str, path: str) -> str:
        """The function API Gateway's REST integration for `method path` invokes."""
        paths: dict[str, str] = {}

        def resource_path(logical: str) -> str:
            if logical not in paths:
                props = self.resources[logical]["Properties"]
                parent = props["ParentId"]
                base = "" if "Fn::GetAtt" in parent else resource_path(parent["Ref"])
                paths[logical] = f"{base}/{props['PathPart']}"
            return paths[logical]

        for res in self.resources.values():
            props = res.get("Properties", {})
            if res["Type"] != "AWS::ApiGateway::Method" or props["HttpMethod"] != method:
                continue
            if "Ref" in props["ResourceId"] and resource_path(props["ResourceId"]["Ref"]) == path:
                return self.of_type("AWS::Lambda::Function", references(props["Integration"]))
        raise LookupError(f"no integration for {method} {path}")

    def queue_function(self, queue: str) -> str:
        """The function an event source mapping feeds from `queue`."""
        (logical,) = [
            self.of_type("AWS::Lambda::Function", references(res["Properties"]["FunctionName"]))
            for res in self.resources.values()
            if res["Type"] == "AWS::Lambda::EventSourceMapping"
            and queue in references(res["Properties"]["EventSourceArn"])
        ]
        return logical

    def task_function(self) -> str:
        """The function the state machine's Tasks invoke (its definition's substitution)."""
        machine = self.resources[self.of_type("AWS::StepFunctions::StateMachine")]
        substitutions = machine["Properties"]["DefinitionSubstitutions"]
        return self.of_type("AWS::Lambda::Function", references(substitutions))

    def domain(self, function: str) -> str:
        """The OpenSearch domain whose endpoint the function is configured with."""
        variables = self.resources[function]["Properties"]["Environment"]["Variables"]
        return self.of_type("AWS::OpenSearchService::Domain", references(variables))

    def documents_source(self) -> tuple[str, str]:
        """The bucket whose notifications feed a queue, and that queue."""
        (notifications,) = [
            res["Properties"]
            for res in self.resources.values()
            if res["Type"] == "Custom::S3BucketNotifications"
        ]
        bucket = self.of_type("AWS::S3::Bucket", references(notifications["BucketName"]))
        queue = self.of_type(
            "AWS::SQS::Queue", references(notifications["NotificationConfiguration"])
        )
        return bucket, queue

    def environment(self, function: str) -> dict[str, str]:
        props = self.resources[function]["Properties"]
        variables = props.get("Environment", {}).get("Variables", {})
        return {k: str(self.resolve(v)) for k, v in variables.items()}

    def policy(self, function: str) -> Policy:
        """Every statement the template attaches to the function's role."""
        role = self.resources[function]["Properties"]["Role"]["Fn::GetAtt"][0]
        statements: list[dict[str, Any]] = []
        for res in self.resources.values():
            props = res.get("Properties", {})
            if res["Type"] == "AWS::IAM::Policy" and {"Ref": role} in props.get("Roles", []):
                statements += props["PolicyDocument"]["Statement"]
        for inline in self.resources[role]["Properties"].get("Policies", []):
            statements += inline["PolicyDocument"]["Statement"]
        return Policy([self.resolve(s) for s in statements])


def references(value: Any) -> set[str]:
    """The logical ids a template value points at through `Ref` or `Fn::GetAtt`."""
    if isinstance(value, list):
        return set().union(*(references(v) for v in value))
    if not isinstance(value, dict):
        return set()
    found: set[str] = set()
    if isinstance(value.get("Ref"), str):
        found.add(value["Ref"])
    if isinstance(value.get("Fn::GetAtt"), list):
        found.add(value["Fn::GetAtt"][0])
    return found.union(*(references(v) for v in value.values()))


# --- IAM ---------------------------------------------------------------------------------------


def _pattern(glob: str) -> re.Pattern[str]:
    """IAM's wildcards: `*` any run of characters (slashes included), `?` exactly one."""
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in glob)
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL)


def _listed(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


@dataclass
class Policy:
    statements: list[dict[str, Any]]

    def allows(self, action: str, resource: str) -> bool:
        allowed = False
        for statement in self.statements:
            if "NotAction" in statement or "NotResource" in statement or "Condition" in statement:
                raise NotImplementedError(f"statement not evaluated here: {statement}")
            actions = _listed(statement["Action"])
            resources = _listed(statement["Resource"])
            if any(_pattern(a).fullmatch(action) for a in actions) and any(
                _pattern(r).fullmatch(resource) for r in resources
            ):
                if statement["Effect"] == "Deny":
                    return False
                allowed = True
        return allowed

    def es_allows(self, domain_arn: str, method: str, path: str) -> bool:
        """What OpenSearch Service checks for an HTTP call under the role's identity policy."""
        return self.allows(f"es:ESHttp{method.capitalize()}", f"{domain_arn}{path}")


_S3_ACTIONS = {"HeadObject": "GetObject", "ListObjectsV2": "ListBucket", "HeadBucket": "ListBucket"}
_TRANSACT = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}


def required_permissions(call: dict[str, Any], stack: EmulatedStack) -> list[tuple[str, str]]:
    """The (action, resource ARN) pairs IAM checks for one recorded SDK call."""
    prefix, operation, params = call["prefix"], call["operation"], call["params"]
    region = call.get("region") or REGION
    if prefix == "dynamodb":

        def table(name: str) -> str:
            return f"arn:aws:dynamodb:{region}:{ACCOUNT}:table/{name}"

        if operation == "TransactWriteItems":
            return [(f"dynamodb:{_TRANSACT[k]}", table(t)) for k, t in params["TransactItems"]]
        if "RequestItems" in params:
            return [(f"dynamodb:{operation}", table(t)) for t in params["RequestItems"]]
        arn = table(params["TableName"])
        if "IndexName" in params:
            arn += f"/index/{params['IndexName']}"
        return [(f"dynamodb:{operation}", arn)]
    if prefix == "s3":
        arn = f"arn:aws:s3:::{params['Bucket']}"
        if "Key" in params:
            arn += f"/{params['Key']}"
        return [(f"s3:{_S3_ACTIONS.get(operation, operation)}", arn)]
    if prefix == "sqs":
        name = urlparse(params["QueueUrl"]).path.rsplit("/", 1)[-1]
        return [(f"sqs:{operation}", f"arn:aws:sqs:{region}:{ACCOUNT}:{name}")]
    if prefix == "secretsmanager":
        secret = params["SecretId"]
        arn = secret if secret.startswith("arn:") else stack.arns.get(secret, secret)
        return [(f"secretsmanager:{operation}", arn)]
    return [(f"{prefix}:{operation}", "*")]


def denied_calls(
    calls: Iterable[dict[str, Any]], policy: Policy, stack: EmulatedStack
) -> list[str]:
    return sorted(
        {
            f"{action} on {resource}"
            for call in calls
            for action, resource in required_permissions(call, stack)
            if not policy.allows(action, resource)
        }
    )


# --- a function from its artifact --------------------------------------------------------------


@dataclass
class LambdaProcess:
    """One execution environment: the function's code and layer, a fresh interpreter."""

    build: Path
    function: str
    env: dict[str, str]
    work: Path
    handler: str | None = None
    module: str | None = None
    argv: list[str] = field(default_factory=list)
    process: subprocess.Popen[str] | None = None
    modules: dict[str, str] = field(default_factory=dict)

    @property
    def task(self) -> Path:
        return self.build / "functions" / self.function

    @property
    def layer(self) -> Path:
        return self.build / "layer" / "python"

    @property
    def calls_file(self) -> Path:
        return self.work / f"{self.function}-calls.jsonl"

    def start(self) -> LambdaProcess:
        config: dict[str, Any] = {
            "name": self.function,
            "path": [str(self.task), str(self.layer), str(self.build / "runtime")],
            "calls": str(self.calls_file),
        }
        if self.module:
            config.update(module=self.module, argv=self.argv)
        else:
            config["handler"] = self.handler
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(self.work),
            "LANG": "C.UTF-8",
            "LAMBDA_TASK_ROOT": str(self.task),
            "AWS_LAMBDA_FUNCTION_NAME": self.function,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            **DUMMY_CREDENTIALS,
            **self.env,
        }
        self.process = subprocess.Popen(
            [base_python(), "-I", "-S", str(CHILD), json.dumps(config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=open(self.work / f"{self.function}-stderr.log", "w"),  # noqa: SIM115
            env=env,
            cwd=self.work,
            text=True,
        )
        return self

    def invoke(self, event: dict[str, Any]) -> Any:
        answer = self.outcome(event)
        if "error" in answer:
            raise AssertionError(f"{self.function} raised:\n{answer['error']}")
        return answer["result"]

    def outcome(self, event: dict[str, Any]) -> dict[str, Any]:
        """`{"result": ...}`, or `{"errorType", "errorMessage", "error"}` when it raised."""
        assert self.process and self.process.stdin and self.process.stdout
        self.process.stdin.write(json.dumps({"event": event}) + "\n")
        self.process.stdin.flush()
        for line in self.process.stdout:
            if line.startswith("@@result "):
                answer: dict[str, Any] = json.loads(line[len("@@result ") :])
                return answer
            if line.startswith("@@modules "):
                self.modules = json.loads(line[len("@@modules ") :])
        raise AssertionError(f"{self.function} exited; stderr:\n{self.stderr()}")

    def stop(self) -> None:
        """Ends the process (EOF on stdin, or SIGTERM for a server) and reads its module list."""
        assert self.process and self.process.stdout
        if self.process.stdin:
            self.process.stdin.close()
        if self.module:
            self.process.terminate()
        for line in self.process.stdout:
            if line.startswith("@@modules "):
                self.modules = json.loads(line[len("@@modules ") :])
        self.process.wait(30)

    def stderr(self) -> str:
        return (self.work / f"{self.function}-stderr.log").read_text()[-5000:]

    def calls(self) -> list[dict[str, Any]]:
        if not self.calls_file.exists():
            return []
        return [json.loads(line) for line in self.calls_file.read_text().splitlines()]

    def leaked_modules(self) -> dict[str, str]:
        """Modules loaded from anywhere but the artifact, the runtime stand-in and the stdlib."""
        allowed = [
            str(self.task),
            str(self.layer),
            str(self.build / "runtime"),
            str(CHILD),
            sysconfig.get_paths()["stdlib"],
            sysconfig.get_paths()["platstdlib"],
        ]
        stdlib_site = os.path.join(sysconfig.get_paths()["stdlib"], "site-packages")
        return {
            name: path
            for name, path in self.modules.items()
            if path.startswith(stdlib_site) or not any(path.startswith(a) for a in allowed)
        }
