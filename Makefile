# Shortcuts; the scripts under deploy/ are what they run.
.PHONY: demo test run services-up services-down bench-engine bench-batch bench-e2e

demo:            ## one simulation end to end on SQLite, no servers
	./deploy/demo.sh

test:            ## install + start PostgreSQL, Redis, Redis Cluster, Kafka; run every test
	./deploy/test.sh

run:             ## the whole service on this machine (web, worker, beat, bridge); Ctrl-C stops it
	./deploy/run.sh

services-up:
	./deploy/services.sh up

services-down:
	./deploy/services.sh down

bench-engine:
	./deploy/bench.sh engine

bench-batch:
	./deploy/bench.sh batch_writes

bench-e2e:
	./deploy/bench.sh end_to_end
