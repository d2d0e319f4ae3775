"""PromQL: lexer, parser, syntax tree and evaluator, with Prometheus 3 semantics."""
