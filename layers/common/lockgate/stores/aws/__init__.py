"""AWS adapters: DynamoDB and S3 through boto3, each call in a worker thread."""
