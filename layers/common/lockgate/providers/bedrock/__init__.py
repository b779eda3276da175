"""Amazon Bedrock's Converse API, behind the `Provider` port."""

from lockgate.providers.bedrock.provider import BedrockProvider

__all__ = ["BedrockProvider"]
