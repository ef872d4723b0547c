"""Shared code of the therapy matching platform (deployed as the Lambda layer).

- `domain`: pure business rules and models (no boto3, SQL or HTTP).
- `logic`: use cases that combine domain rules with ports.
- `ports`: small interfaces the logic depends on.
- `adapters`: PostgreSQL, EventBridge, Kafka, Secrets Manager implementations of the ports.
- `api`: the shared REST resolver with the one place that maps domain errors to HTTP.
"""
