"""Interoperability with other PDE benchmarks' files (docs/interop.md).

`pdebench-import` registers a foreign dataset directory (The Well, PDEArena/LPSDA KS) as a pdebench dataset read in
place: adapters (`the_well`, `pdearena_ks`) map the foreign layout to our fields, parameters and grid, and `index`
writes split files whose fields are virtual datasets into the foreign files, pinned by the manifest. `pdebench-export`
writes one of our datasets in The Well's layout (`well_export`). The package sits above the data layer and below the
solvers: it imports `pdebench.data` and `pdebench.config` only.
"""
