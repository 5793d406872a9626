"""Raw tables in, validated typed tables out: reading and writing tables, the Great Expectations suites derived from
the contract, row-level checks, the prepare step."""
