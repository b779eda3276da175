"""Provider keys (OpenAI, Anthropic) for the functions, in Secrets Manager.

One JSON secret, `{"OPENAI_API_KEY": "...", "ANTHROPIC_API_KEY": "..."}`: the functions read it
once per container (`lockgate.stores.aws.secrets`, from `LOCKGATE_PROVIDER_SECRET_ARN`), so a
key never sits in the template, the function configuration or the logs. The stack creates it
empty unless `providerSecretArn` names one you already have; the default Bedrock policy needs
no key at all. Fill it with `aws secretsmanager put-secret-value` (README); a later deploy does
not overwrite the value.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

SECRET_ENV = "LOCKGATE_PROVIDER_SECRET_ARN"


class ProviderSecret(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, secret_arn: str | None) -> None:
        super().__init__(scope, construct_id)
        self.secret: secretsmanager.ISecret
        if secret_arn is not None:
            self.secret = secretsmanager.Secret.from_secret_complete_arn(self, "Secret", secret_arn)
        else:
            self.secret = secretsmanager.Secret(
                self,
                "Secret",
                description="Lockgate provider API keys (JSON: OPENAI_API_KEY, ANTHROPIC_API_KEY)",
                # No key yet: an empty object, replaced by put-secret-value.
                secret_string_value=cdk.SecretValue.unsafe_plain_text("{}"),
                removal_policy=cdk.RemovalPolicy.RETAIN,
            )

    @property
    def environment(self) -> dict[str, str]:
        return {SECRET_ENV: self.secret.secret_arn}

    def grant_read(self, grantee: iam.IGrantable) -> None:
        self.secret.grant_read(grantee)
