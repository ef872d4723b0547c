"""Local cloud tooling: runs LocalStack, PostgreSQL, Kafka (Tansu) and SMTP on 127.0.0.1 without Docker."""
