"""Exact interventional Shapley values of a sum of trees, with the players being groups of input
features (a raw column's one-hot parts, its missing-value indicator, its date parts).

shap's interventional Tree SHAP takes each input feature as a player: it then hides one one-hot
part of a column and shows another, making rows no raw column can be, and the parts' values,
summed, are not the column's Shapley value (2-50% off on diamonds and credit_data). Here a
player is a group, as the permutation estimate masks a raw column whole.

For one background row b, a leaf l is reached by the hybrid row (the row's values on the
players in S, b's elsewhere) exactly when every player on l's path sends the hybrid the way to
l. Per player on the path: the row's values go that way or not, and b's go that way or not. A
player both go with is free; one neither goes with makes the leaf unreachable; the others are
A (only the row's values lead there: the player must be in S) and B (only b's: it must not).
The leaf's game, v_l [A in S, B outside S], has the Shapley values
v_l (|A|-1)! |B|! / (|A|+|B|)! for each player of A and -v_l |A|! (|B|-1)! / (|A|+|B|)! for each
of B (Laberge and Pequignot, "Understanding interventional TreeSHAP", 2022). A model that is a
sum of trees (or an average) gets the sum over trees and leaves, averaged over the background.
Computed with numpy for all rows, background rows and leaves of a tree at once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from math import factorial
from typing import Any

import numpy as np

MAX_CELLS_PER_STEP = 4_000_000  # rows x background x leaves x slots of one step (its memory)
# Leaves x path length summed over the trees, at most: the paths kept in memory (a deep forest
# of 300 trees has 50 million and more; 1,000 boosted trees of 31 leaves, about 300,000)
MAX_PATH_CELLS = 5_000_000


@dataclass(frozen=True)
class TreeArrays:
    """A tree ensemble as shap's TreeEnsemble reads it: per tree, its nodes' children (-1 for a
    leaf), the child a missing value goes to, the feature and threshold (left when the value
    is at most the threshold) and the values (nodes x outputs)."""

    children_left: np.ndarray
    children_right: np.ndarray
    children_default: np.ndarray
    features: np.ndarray
    thresholds: np.ndarray
    values: np.ndarray
    input_dtype: Any

    @classmethod
    def of(cls, ensemble: Any) -> TreeArrays:
        return cls(
            ensemble.children_left,
            ensemble.children_right,
            ensemble.children_default,
            ensemble.features,
            ensemble.thresholds,
            ensemble.values,
            ensemble.input_dtype,
        )


class TooLarge(Exception):
    """The trees' paths would not fit in MAX_PATH_CELLS."""


def path_cells(trees: TreeArrays) -> int:
    """Leaves x the deepest path, summed over the trees: what reading them costs, at most."""
    leaves = int(((trees.children_left < 0) & (trees.children_right < 0)).sum())
    return leaves * _deepest(trees)


def _deepest(trees: TreeArrays) -> int:
    depth = np.zeros(trees.children_left.shape, dtype=int)
    deepest = 0
    for level in range(trees.children_left.shape[1]):
        splits = trees.children_left >= 0
        tree_index, node = np.nonzero(splits & (depth == level))
        if tree_index.size == 0:
            break
        deepest = level + 1
        depth[tree_index, trees.children_left[tree_index, node]] = level + 1
        depth[tree_index, trees.children_right[tree_index, node]] = level + 1
    return deepest


class GroupedTreeShap:
    """The trees' leaf paths, and which way the background rows go on them, read once; then
    `values(rows)`: rows x groups x outputs, each group's Shapley value for the sum of the
    trees against the background rows (averaged). `groups[feature]` is the feature's player,
    -1 for a feature that is the same in every row and background row (never a player).
    Reading stops with TimeoutError past `deadline` (a time.monotonic() value), and TooLarge
    comes first for trees whose paths exceed MAX_PATH_CELLS."""

    def __init__(
        self,
        trees: TreeArrays,
        background: np.ndarray,
        groups: np.ndarray,
        n_groups: int,
        deadline: float | None = None,
    ) -> None:
        cells = path_cells(trees)
        if cells > MAX_PATH_CELLS:
            raise TooLarge(f"{cells:,} leaf-path cells, more than {MAX_PATH_CELLS:,}")
        self.trees, self.n_groups = trees, n_groups
        self.n_background = len(background)
        reference = background.astype(trees.input_dtype).astype(float)
        self.paths = []
        n_trees = trees.children_left.shape[0]
        for tree in range(n_trees):
            if trees.children_left[tree, 0] < 0:
                continue  # a single leaf: the same output for every row
            path = _LeafPaths.of(trees, tree, groups)
            if path.slot_player.shape[1]:  # else no player: the same output for every row
                self.paths.append((tree, path, path.followed(trees, tree, reference)))
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"read {tree + 1} of {n_trees} trees")

    def values(self, rows: np.ndarray) -> np.ndarray:
        rows = rows.astype(self.trees.input_dtype).astype(float)
        values = np.zeros((len(rows), self.n_groups, self.trees.values.shape[2]))
        for tree, path, on_path_b in self.paths:
            cells = self.n_background * path.leaves.size * max(path.depth, 1)
            step = max(1, MAX_CELLS_PER_STEP // cells)
            for start in range(0, len(rows), step):
                chunk = slice(start, start + step)
                on_path_x = path.followed(self.trees, tree, rows[chunk])
                values[chunk] += path.shapley(on_path_x, on_path_b, self.n_groups)
        return values


@dataclass(frozen=True)
class _LeafPaths:
    """Each leaf's path from the root (`depth` nodes at most) and the players met on it, one
    slot per player (a player met twice is one slot; `width` slots at most)."""

    leaves: np.ndarray  # leaf node ids
    nodes: np.ndarray  # leaves x depth: the path's nodes (0 where the path is shorter)
    goes_left: np.ndarray  # leaves x depth: the path goes to the node's left child
    on_path: np.ndarray  # leaves x depth: a real node of the path
    slot: np.ndarray  # leaves x depth: the slot of the node's player (-1: no player)
    slot_player: np.ndarray  # leaves x width: the player of each slot (-1: no slot)
    leaf_values: np.ndarray  # leaves x outputs

    @property
    def depth(self) -> int:
        return self.nodes.shape[1]

    @classmethod
    def of(cls, trees: TreeArrays, tree: int, groups: np.ndarray) -> _LeafPaths:
        left, right = trees.children_left[tree], trees.children_right[tree]
        splits = np.flatnonzero(left >= 0)
        parent = np.full(len(left), -1)
        from_left = np.zeros(len(left), dtype=bool)
        parent[left[splits]], from_left[left[splits]] = splits, True
        parent[right[splits]] = splits
        leaves = np.flatnonzero((left < 0) & ((parent >= 0) | (np.arange(len(left)) == 0)))
        steps, current = [], leaves.copy()
        while (parent[current] >= 0).any():
            up = parent[current]
            steps.append((np.where(up >= 0, up, 0), from_left[current], up >= 0))
            current = np.where(up >= 0, up, current)
        nodes = np.stack([s[0] for s in steps], axis=1).astype(np.int32)  # not a single leaf
        on_path = np.stack([s[2] for s in steps], axis=1)
        feature = trees.features[tree][nodes]
        player = np.where(on_path, groups[np.clip(feature, 0, None)], -1)
        same = (player[:, :, None] == player[:, None, :]) & (player[:, None, :] >= 0)
        first = np.where(player >= 0, same.argmax(axis=2), -1)  # first position of the player
        starts = (first == np.arange(nodes.shape[1])) & (player >= 0)
        rank = np.cumsum(starts, axis=1) - 1  # a starting position's slot
        slot = np.where(player >= 0, np.take_along_axis(rank, np.maximum(first, 0), 1), -1)
        slot = slot.astype(np.int16)
        width = int(starts.sum(axis=1).max(initial=0))
        slot_player = np.full((len(leaves), width), -1)
        leaf_index, position = np.nonzero(starts)
        slot_player[leaf_index, rank[leaf_index, position]] = player[leaf_index, position]
        return cls(
            leaves=leaves,
            nodes=nodes,
            goes_left=np.stack([s[1] for s in steps], axis=1),
            on_path=on_path,
            slot=slot,
            slot_player=slot_player,
            leaf_values=trees.values[tree, leaves],
        )

    def followed(self, trees: TreeArrays, tree: int, table: np.ndarray) -> np.ndarray:
        """rows x leaves x width: whether the row's values of each slot's player go the path's
        way (True for an unused slot: free). Nodes of no player (a feature the same in every
        row and background row) send them all the same way: a path they block is blocked for
        all, its slots False."""
        feature = trees.features[tree][self.nodes]
        value = table[:, np.clip(feature, 0, None)]  # rows x leaves x depth
        default_left = (
            trees.children_default[tree][self.nodes] == trees.children_left[tree][self.nodes]
        )
        left = np.where(np.isnan(value), default_left, value <= trees.thresholds[tree][self.nodes])
        strays = (left != self.goes_left) & self.on_path
        of_player = self.slot >= 0
        failed = np.zeros((len(table), *self.slot_player.shape), dtype=bool)
        leaf_index = np.arange(len(self.leaves))
        for position in range(self.depth):  # a slot fails when any node of its player does
            on = of_player[:, position]
            failed[:, leaf_index[on], self.slot[on, position]] |= strays[:, on, position]
        blocked = (strays & ~of_player).any(axis=2, keepdims=True)
        return np.where(self.slot_player >= 0, ~failed & ~blocked, True)

    def shapley(self, on_x: np.ndarray, on_b: np.ndarray, n_groups: int) -> np.ndarray:
        """rows x groups x outputs: the leaves' Shapley values, averaged over the background."""
        x, b = on_x[:, None], on_b[None]  # rows x background x leaves x width
        only_x, only_b = x & ~b, ~x & b
        live = ~(~x & ~b).any(axis=3)
        n_x, n_b = only_x.sum(axis=3), only_b.sum(axis=3)
        weight_x = np.where(n_x > 0, _FACTORIALS[np.maximum(n_x - 1, 0)] * _FACTORIALS[n_b], 0.0)
        weight_b = np.where(n_b > 0, _FACTORIALS[n_x] * _FACTORIALS[np.maximum(n_b - 1, 0)], 0.0)
        scale = live / _FACTORIALS[n_x + n_b] / on_b.shape[0]
        per_slot = np.einsum("rklp,rkl->rlp", only_x, weight_x * scale) - np.einsum(
            "rklp,rkl->rlp", only_b, weight_b * scale
        )
        leaf_index, slot = np.nonzero(self.slot_player >= 0)
        contributions = per_slot[:, leaf_index, slot, None] * self.leaf_values[leaf_index]
        values = np.zeros((on_x.shape[0], n_groups, self.leaf_values.shape[1]))
        np.add.at(values, (slice(None), self.slot_player[leaf_index, slot]), contributions)
        return values


_FACTORIALS = np.array([float(factorial(n)) for n in range(171)])
