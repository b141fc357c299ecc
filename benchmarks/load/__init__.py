"""Load comparison: pastefile's HTTP throughput beside reference servers.

    python -m benchmarks.load [--smoke] [--seconds S] [--repeats N] [--json out.json] [--only SCENARIO ...]

Every server (pastefile on SQLite, pastefile on PostgreSQL with fsync on and
two memcached nodes, a bare body reader, hello world, a minimal Pyramid app
and the book's Flask file host on both databases) is started once with
``pserve`` over the ``[server:main]`` section of production.ini, on
127.0.0.1.  wrk (Lua scripts in ``lua/``) and curl drive them; each
scenario runs its contenders interleaved, ``--repeats`` rounds, and reports
medians and ratios against the scenario's reference.  See runner.py.
"""
