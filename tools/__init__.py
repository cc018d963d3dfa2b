"""Command-line tools around the platform, one place per audience:

- operators, at the top: ``python -m tools.synth_diff`` (the change a plan will make), ``tools.redrive``
  (the on-failure queue back through the processor), ``tools.capacity`` (capacity and monthly cost of a
  fleet), ``tools.smoke`` (a deployed environment checked end to end);
- the local AWS, in :mod:`tools.local`: the data path on moto (``python -m tools.local.simulate``) and
  the stacks deployed on moto's server (``python -m tools.local.deploy_local``);
- measurement, in :mod:`tools.bench`: ``python -m tools.bench`` and what it measures with.
"""
