"""Local development tooling (never deployed, not part of any Lambda layer).

- `local.stack`: every resource of template.yaml built on moto, with a runner that delivers
  the table's stream, the bus rules, the queues and the schedules to the functions' code;
- `local.apigw`: API Gateway HTTP API (payload 2.0) events and a fake Lambda context;
- `local.eventbridge`: an EventBridge event-pattern matcher;
- `local.demo`: `python -m local.demo` (`make demo`), the sample journeys replayed end to end;
- `local.make_events`: regenerates the sample Lambda events in `events/`;
- `local.env`: the fake-credentials environment every local run uses;
- `local.server`: `python -m local.server` (`make serve`), the long-running local stack;
- `local.serve_client`: starts it as a subprocess and talks to it (the e2e tests use it).
"""
