"""Specification of pytrees: flatten, unflatten, map, paths."""

from collections import namedtuple

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_np as tg
from tinygrad_np.tree import LEAF, TreeDef, tree_paths

leaves = st.integers() | st.floats(allow_nan=False) | st.none() | st.text(max_size=3)
trees = st.recursive(
    leaves,
    lambda children: (
        st.lists(children, max_size=4)
        | st.lists(children, max_size=4).map(tuple)
        | st.dictionaries(st.text(max_size=3), children, max_size=4)
    ),
    max_leaves=20,
)


@given(trees)
def test_unflatten_inverts_flatten(tree):
    flat, treedef = tg.tree_flatten(tree)
    rebuilt = tg.tree_unflatten(treedef, flat)
    assert rebuilt == tree
    assert type(rebuilt) is type(tree)
    assert tg.tree_flatten(rebuilt) == (flat, treedef)


@given(trees)
def test_paths_follow_flatten_order(tree):
    flat, _ = tg.tree_flatten(tree)
    paths = tree_paths(tree)
    assert len(paths) == len(flat)
    for path, leaf in zip(paths, flat, strict=True):
        node = tree
        for key in path:
            node = node[key]
        assert node is leaf


def test_dicts_flatten_in_insertion_order_and_nest():
    tree = {"b": 1, "a": [2, (3, {"c": 4})]}
    flat, treedef = tg.tree_flatten(tree)
    assert flat == [1, 2, 3, 4]
    assert treedef.kind == "dict" and treedef.keys == ("b", "a")
    assert treedef.num_leaves == 4
    assert tree_paths(tree) == [("b",), ("a", 0), ("a", 1, 0), ("a", 1, 1, "c")]


def test_arrays_none_and_namedtuples_are_leaves():
    Point = namedtuple("Point", "x y")
    p = Point(1, 2)
    flat, treedef = tg.tree_flatten([np.zeros(3), None, p])
    assert flat[1] is None and flat[2] is p
    assert treedef.children == (LEAF, LEAF, LEAF)
    assert tg.tree_flatten(np.ones(2))[1] == LEAF


def test_unflatten_with_the_wrong_number_of_leaves_is_an_error():
    _, flat_def = tg.tree_flatten({"a": 1, "b": 2})
    _, nested_def = tg.tree_flatten({"a": [1, 2], "b": 3})
    for treedef, values in [(flat_def, [1]), (flat_def, [1, 2, 3]), (nested_def, [1, 2])]:
        with pytest.raises(ValueError, match=r"tree has \d leaves, got \d values"):
            tg.tree_unflatten(treedef, values)


def test_a_structure_rebuilt_from_parts_unflattens_like_the_original():
    # checkpoint.py rebuilds TreeDefs from saved metadata: equal, not identical, leaves
    treedef = TreeDef("dict", ("w", "b"), (TreeDef("leaf", (), ()), TreeDef("leaf", (), ())))
    assert tg.tree_unflatten(treedef, [1, 2]) == {"w": 1, "b": 2}


def test_tree_map_over_several_trees_and_mismatch_errors():
    a, b = {"w": 1.0, "v": [2.0, 3.0]}, {"w": 10.0, "v": [20.0, 30.0]}
    assert tg.tree_map(lambda x, y: x + y, a, b) == {"w": 11.0, "v": [22.0, 33.0]}
    with pytest.raises(ValueError, match="tree structures differ"):
        tg.tree_map(lambda x, y: x, a, {"w": 1.0, "v": [2.0]})
