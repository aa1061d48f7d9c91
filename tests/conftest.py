"""Hypothesis profiles for the property suites.

Select one with ``TINYGRAD_NP_HYPOTHESIS_PROFILE``:

* ``default``: few examples, for local runs (the whole suite stays fast);
* ``ci``: the same examples, derandomized (the seed is fixed and no example
  database is read or written), so a CI failure reproduces exactly; chosen
  automatically when the ``CI`` environment variable is set;
* ``thorough``: many more examples, for a deliberate hunt before a release.

Every profile disables the per-example deadline: timings on a shared 2-core
machine vary by far more than hypothesis' 200 ms default allows, and a deadline
miss would be a flaky failure that says nothing about gradients. No health
check is suppressed.
"""

import os

from hypothesis import settings

PROFILE_VARIABLE = "TINYGRAD_NP_HYPOTHESIS_PROFILE"

settings.register_profile("default", max_examples=40, deadline=None)
settings.register_profile(
    "ci", parent=settings.get_profile("default"), derandomize=True, database=None
)
settings.register_profile("thorough", max_examples=500, deadline=None)

_profile = os.environ.get(PROFILE_VARIABLE) or ("ci" if os.environ.get("CI") else "default")
if _profile not in ("default", "ci", "thorough"):
    raise ValueError(
        f"{PROFILE_VARIABLE}={_profile!r} is not a hypothesis profile of this suite; "
        "use 'default', 'ci' or 'thorough'"
    )
settings.load_profile(_profile)
