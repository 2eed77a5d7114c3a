"""Many Maxio sites, one `meltano run` each, scheduled side by side by Dagster.

`sites.py` reads the list of sites (`sites.toml`) and writes the Meltano extractor of
each; `definitions.py` makes each site a Dagster asset; `meltano.py` runs one site.
"""
