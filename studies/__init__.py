"""Study specs shipped with hpsearch (``digits.yaml``, ``shapes.yaml``, ``cifar10.yaml``).

Any of them can be named without its path: ``hpsearch train --spec digits``.
"""
