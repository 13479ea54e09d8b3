"""The Kafka edge: topics, event schemas, the assessment.completed consumer (bridge)
and the outbox relay. Nothing else in the project talks to Kafka."""
