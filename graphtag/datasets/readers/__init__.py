"""The readers behind :mod:`graphtag.datasets.files`, one module per job.

:mod:`~graphtag.datasets.readers.formats` (file types and options),
:mod:`~graphtag.datasets.readers.text` (line and node-id utilities),
:mod:`~graphtag.datasets.readers.arrays` (:class:`~graphtag.datasets.files.GraphArrays`, task
selection, summaries), :mod:`~graphtag.datasets.readers.labels` (labels files),
:mod:`~graphtag.datasets.readers.edgelist` (edge lists and SNAP files),
:mod:`~graphtag.datasets.readers.matfile` (``.mat``), :mod:`~graphtag.datasets.readers.pyg`
(``torch.save``'d PyG ``Data``), :mod:`~graphtag.datasets.readers.graphml` (GraphML/GML) and
:mod:`~graphtag.datasets.readers.cache` (the processed-data cache). OGB folders and the named
benchmarks are read by :mod:`graphtag.datasets.benchmarks`. Use them through
:mod:`graphtag.datasets.files`, whose names are the public ones.
"""
