"""Spiders of the benchmark written with our framework: `bench_lxml` (a) and `bench_soup` (b).

A regular package on purpose: the loader imports it as `spiders`, and a namespace
package would lose to the project's own `spiders/` package on the path.
"""
