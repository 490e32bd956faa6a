"""One sqlite3 connection and a distinct SQL text per call: the connection's statement
cache is an LRU bounded by cached_statements=1000, reached only after 1000 calls."""

import sqlite3

EXPECTED = {"leak": False}

conn = sqlite3.connect(":memory:", cached_statements=1000)
conn.execute("create table item (id integer primary key, name text)")
conn.executemany("insert into item values (?, ?)", [(k, f"item-{k}") for k in range(50)])


def step(i: int) -> None:
    conn.execute(f"select name from item where id = {i % 50} and name != 'x{i}'").fetchall()
