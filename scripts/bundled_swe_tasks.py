"""The four tiny repositories and scripted expert actions behind trajectories/swe/bundled.jsonl.

Everything here was written for srl-swe; make_bundled_trajectories.py executes the actions for real,
so observations are never typed by hand. `rc="fail"` / `rc=0` on a bash action asserts how the command
must end, which keeps each thought ("this fails", "now it passes") honest.
"""

from textwrap import dedent

TEST_CMD = "python -m pytest -q tests"


def bash(thought, command, rc=None):
    return {"thought": thought, "tool": "bash", "params": {"command": command}, "rc": rc}


def edit(thought, command, path, **params):
    # Parameter order follows SWE-agent's tool signature: command, path, then the rest.
    params = {"command": command, "path": path, **params}
    return {"thought": thought, "tool": "str_replace_editor", "params": params}


def submit(thought):
    return {"thought": thought, "tool": "submit", "params": {}}


def src(text):
    return dedent(text).lstrip("\n")


PAGER = {
    "instance_id": "srl-bundled__pager.page-offset",
    "repo": "srl-bundled/pager",
    "problem_statement": (
        "paginate() returns the wrong page.\n\n"
        "Pages are documented as 1-based, but `paginate(list(range(25)), 1, per_page=10)` returns "
        "items 10..19 instead of 0..9, and page 3 (which should hold the last five items) comes back empty."
    ),
    "files": {
        "pager/__init__.py": "from .paginate import page_count, paginate\n",
        "pager/paginate.py": src('''
            """Split a sequence into fixed-size pages (pages are numbered from 1)."""


            def page_count(total, per_page):
                """Number of pages needed to show `total` items, `per_page` at a time."""
                if per_page <= 0:
                    raise ValueError("per_page must be positive")
                return (total + per_page - 1) // per_page


            def paginate(items, page, per_page=10):
                """Return the items shown on `page` (1-based)."""
                if page < 1:
                    raise ValueError("page numbers start at 1")
                start = page * per_page
                return list(items[start:start + per_page])
            '''),
        "tests/test_paginate.py": src('''
            from pager import page_count, paginate


            def test_first_page_starts_at_first_item():
                assert paginate(list(range(25)), 1, per_page=10) == list(range(10))


            def test_last_page_is_partial():
                assert paginate(list(range(25)), 3, per_page=10) == [20, 21, 22, 23, 24]


            def test_page_count_rounds_up():
                assert page_count(25, 10) == 3
                assert page_count(0, 10) == 0
            '''),
    },
    "actions": [
        bash("Let me start by listing the files in the repository.",
             "find . -path ./.git -prune -o -type f -print | sort"),
        edit("The pagination code is in pager/paginate.py. Let me read it.",
             "view", "/testbed/pager/paginate.py"),
        bash("Next I'll reproduce the report with the same inputs.",
             'python -c "from pager import paginate; print(paginate(list(range(25)), 1, per_page=10)); '
             'print(paginate(list(range(25)), 3, per_page=10))"', rc=0),
        bash("That matches the report: page 1 starts at item 10. Let me run the tests too.",
             TEST_CMD, rc="fail"),
        edit("`start = page * per_page` treats the 1-based page number as 0-based, so every page is shifted "
             "forward by one. The first page has to start at index 0.",
             "str_replace", "/testbed/pager/paginate.py",
             old_str="    start = page * per_page", new_str="    start = (page - 1) * per_page"),
        bash("Now I'll run the reproduction again.",
             'python -c "from pager import paginate; print(paginate(list(range(25)), 1, per_page=10)); '
             'print(paginate(list(range(25)), 3, per_page=10))"', rc=0),
        bash("Both pages look right now. Let me run the test suite.", TEST_CMD, rc=0),
        submit("All tests pass and the fix is a single line, so I'll submit."),
    ],
}

STATS = {
    "instance_id": "srl-bundled__stats.empty-input",
    "repo": "srl-bundled/stats",
    "problem_statement": (
        "mean() and median() give confusing errors on empty input.\n\n"
        "`mean([])` raises ZeroDivisionError and `median([])` raises IndexError. Both should raise "
        "ValueError with a message that says the sequence is empty."
    ),
    "files": {
        "stats/__init__.py": "from .core import mean, median\n",
        "stats/core.py": src('''
            """Small descriptive statistics helpers."""


            def mean(xs):
                """Arithmetic mean of a non-empty sequence of numbers."""
                return sum(xs) / len(xs)


            def median(xs):
                """Middle value of a non-empty sequence (mean of the two middle values for even lengths)."""
                ordered = sorted(xs)
                mid = len(ordered) // 2
                if len(ordered) % 2:
                    return ordered[mid]
                return (ordered[mid - 1] + ordered[mid]) / 2
            '''),
        "tests/test_core.py": src('''
            import pytest

            from stats import mean, median


            def test_mean():
                assert mean([1, 2, 3, 4]) == 2.5


            def test_median_odd_and_even():
                assert median([3, 1, 2]) == 2
                assert median([4, 1, 3, 2]) == 2.5


            def test_mean_of_empty_input_raises_value_error():
                with pytest.raises(ValueError, match="empty"):
                    mean([])


            def test_median_of_empty_input_raises_value_error():
                with pytest.raises(ValueError, match="empty"):
                    median([])
            '''),
    },
    "actions": [
        bash("First I'll find where mean and median are defined.", 'grep -rn "def " --include=*.py .'),
        edit("Both functions are in stats/core.py. Let me look at the whole file.",
             "view", "/testbed/stats/core.py"),
        bash("Let me confirm what happens for an empty list.",
             'python -c "from stats import mean; mean([])"', rc="fail"),
        bash("The ZeroDivisionError is confirmed. I'll run the tests to see what else fails.",
             TEST_CMD, rc="fail"),
        edit("Neither function checks for empty input. I'll make mean() raise ValueError before it divides.",
             "str_replace", "/testbed/stats/core.py",
             old_str="    return sum(xs) / len(xs)",
             new_str='    if not xs:\n        raise ValueError("mean() of empty sequence")\n'
                     "    return sum(xs) / len(xs)"),
        edit("median() needs the same check. Putting it after sorting means it also works for iterators.",
             "str_replace", "/testbed/stats/core.py",
             old_str="    ordered = sorted(xs)\n",
             new_str="    ordered = sorted(xs)\n    if not ordered:\n"
                     '        raise ValueError("median() of empty sequence")\n'),
        bash("Now I'll run the tests again.", TEST_CMD, rc=0),
        submit("Both functions now raise ValueError on empty input and the tests pass. Submitting."),
    ],
}

UNITS = {
    "instance_id": "srl-bundled__units.km-to-miles",
    "repo": "srl-bundled/units",
    "problem_statement": (
        "km_to_miles() returns values that are too large.\n\n"
        "A 10 km run is reported as 16.09 miles, but 10 km is about 6.21 miles. miles_to_km() looks correct."
    ),
    "files": {
        "units/__init__.py": '"""Unit conversion helpers."""\n',
        "units/length.py": src('''
            """Length conversions. Both factors are exact by definition."""

            KM_PER_MILE = 1.609344
            CM_PER_INCH = 2.54


            def miles_to_km(miles):
                return miles * KM_PER_MILE


            def km_to_miles(km):
                return km * KM_PER_MILE


            def inches_to_cm(inches):
                return inches * CM_PER_INCH


            def cm_to_inches(cm):
                return cm / CM_PER_INCH
            '''),
        "tests/test_length.py": src('''
            import pytest

            from units.length import cm_to_inches, inches_to_cm, km_to_miles, miles_to_km


            def test_miles_to_km():
                assert miles_to_km(26.2) == pytest.approx(42.1648128)


            def test_km_to_miles():
                assert km_to_miles(10) == pytest.approx(6.2137119, rel=1e-6)


            @pytest.mark.parametrize("value", [0, 1, 5.5, 100])
            def test_round_trips(value):
                assert km_to_miles(miles_to_km(value)) == pytest.approx(value)
                assert cm_to_inches(inches_to_cm(value)) == pytest.approx(value)
            '''),
    },
    "actions": [
        edit("Let me look at the repository layout first.", "view", "/testbed"),
        bash("Let me see where the mile factor is used.", "grep -rn KM_PER_MILE units"),
        edit("Both directions multiply by KM_PER_MILE, so one of them must be wrong. I'll write a small "
             "script to reproduce the problem.",
             "create", "/testbed/reproduce.py",
             file_text=src('''
                 from units.length import km_to_miles, miles_to_km

                 print("10 km in miles:", round(km_to_miles(10), 4))
                 print("3 miles there and back:", round(km_to_miles(miles_to_km(3)), 4))
                 ''')),
        bash("Let me run it.", "python reproduce.py", rc=0),
        edit("10 km comes out as 16.09 miles, and a round trip does not return the value it started with. "
             "Kilometres have to be divided by KM_PER_MILE to get miles, not multiplied.",
             "str_replace", "/testbed/units/length.py",
             old_str="    return km * KM_PER_MILE", new_str="    return km / KM_PER_MILE"),
        bash("Now I'll run the reproduction script again.", "python reproduce.py", rc=0),
        bash("10 km is 6.2137 miles and the round trip gives 3 back. Let me run the test suite.",
             TEST_CMD, rc=0),
        bash("The tests pass. I'll remove the reproduction script so it is not part of the change.",
             "rm reproduce.py"),
        submit("The conversion is fixed, so I'll submit."),
    ],
}

CONFMERGE = {
    "instance_id": "srl-bundled__confmerge.no-mutation",
    "repo": "srl-bundled/confmerge",
    "problem_statement": (
        "deep_merge() modifies the dictionary passed as `base`.\n\n"
        "After `deep_merge(DEFAULTS, {\"db\": {\"port\": 5433}})` the module-level DEFAULTS dict has "
        "port 5433 too, so later merges start from the wrong defaults. merge_all() has the same problem "
        "with the nested sections of its first layer. Merging should never change its inputs."
    ),
    "files": {
        "confmerge/__init__.py": "from .merge import deep_merge, merge_all\n",
        "confmerge/merge.py": src('''
            """Merge layered configuration dictionaries."""


            def deep_merge(base, override):
                """Return a new dict with `override` merged into `base`, merging nested dicts too."""
                result = base
                for key, value in override.items():
                    if isinstance(value, dict) and isinstance(result.get(key), dict):
                        result[key] = deep_merge(result[key], value)
                    else:
                        result[key] = value
                return result


            def merge_all(*layers):
                """Merge configuration layers from left to right (later layers win)."""
                merged = {}
                for layer in layers:
                    merged = deep_merge(merged, layer)
                return merged
            '''),
        "tests/test_merge.py": src('''
            from confmerge import deep_merge, merge_all


            def test_nested_values_are_merged():
                merged = deep_merge({"db": {"host": "localhost", "port": 5432}}, {"db": {"port": 5433}})
                assert merged == {"db": {"host": "localhost", "port": 5433}}


            def test_base_is_not_modified():
                base = {"db": {"host": "localhost", "port": 5432}, "debug": False}
                deep_merge(base, {"db": {"port": 5433}, "debug": True})
                assert base == {"db": {"host": "localhost", "port": 5432}, "debug": False}


            def test_merge_all_leaves_layers_untouched():
                defaults = {"log": {"level": "INFO"}}
                user = {"log": {"level": "DEBUG"}}
                assert merge_all(defaults, user) == {"log": {"level": "DEBUG"}}
                assert defaults == {"log": {"level": "INFO"}}
            '''),
    },
    "actions": [
        bash("Let me list the Python files in the repository.",
             'find . -name "*.py" -not -path "./.git/*" | sort'),
        edit("The merge logic is in confmerge/merge.py. Let me read it.",
             "view", "/testbed/confmerge/merge.py"),
        bash("Let me reproduce the problem with a small defaults dict.",
             'python -c "\n'
             "from confmerge import deep_merge\n"
             "defaults = {'db': {'host': 'localhost', 'port': 5432}}\n"
             "merged = deep_merge(defaults, {'db': {'port': 5433}})\n"
             "print('merged:  ', merged)\n"
             "print('defaults:', defaults)\n"
             '"', rc=0),
        bash("The defaults changed, as the report says. Let me run the tests.", TEST_CMD, rc="fail"),
        edit("`result = base` does not make a copy, so every assignment writes into the caller's dict. "
             "Override values are also stored by reference and can be changed by later merges. I'll copy "
             "both, starting with an import of `copy` below the module docstring.",
             "insert", "/testbed/confmerge/merge.py", insert_line="1", new_str="\nimport copy"),
        edit("Now I'll work on a deep copy of base instead of base itself.",
             "str_replace", "/testbed/confmerge/merge.py",
             old_str="    result = base", new_str="    result = copy.deepcopy(base)"),
        edit("I'll also copy values taken from override so the result shares no nested dicts with inputs.",
             "str_replace", "/testbed/confmerge/merge.py",
             old_str="            result[key] = value",
             new_str="            result[key] = copy.deepcopy(value)"),
        bash("Let me run the tests again.", TEST_CMD, rc=0),
        submit("The inputs are no longer modified and all tests pass. Submitting."),
    ],
}

SWE_TASKS = [PAGER, STATS, UNITS, CONFMERGE]
