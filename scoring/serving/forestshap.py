"""Exact SHAP values of a scikit-learn random forest (binary): shap's `TreeExplainer` numbers, ~60x faster per core.

shap explains a forest with path-dependent TreeSHAP (Lundberg et al., "From local explanations to global understanding
with explainable AI for trees", 2020): the value of a set S of features is the tree's output when the row is followed
at the nodes that split on a feature of S and both children are averaged by their cover elsewhere. Leaf l then adds
v_l prod_{g in S} h_g prod_{g not in S} c_g to v(S), over the d distinct features g of its path, where c_g is the
product of the cover ratios of g's edges on the path and h_g is 1 where the row follows all of them, else 0.

Algorithm. The Shapley weight |S|! (d-|S|-1)! / d! is the Beta integral of t^|S| (1-t)^(d-|S|-1) over [0, 1], so
(Owen's multilinear extension, as in Linear TreeShap, Yu et al., NeurIPS 2022) leaf l gives feature j

    v_l (h_j - c_j) * integral over [0, 1] of prod_{g != j} f_g(t) dt,    f_g(t) = c_g (1 - t) + h_g t,

a polynomial of degree d - 1 in t: Gauss-Legendre quadrature with K = ceil(D / 2) points (D: the most distinct
features on a path of the forest, <= max_depth) is exact for it. Per tree and quadrature point, one depth-first pass
computes Q (the product of the factors from the root) downwards and B (the sum over a subtree's leaves of v_l times
the factors below its root) upwards; node p's split feature gets sum_k w_k Q_p(t_k) sum_{children y} (h_y - c_y)
B_y(t_k). A leaf's B is its value, so leaves cost one multiply-add per point and an internal node whose children are
both leaves (a third of the nodes) is handled in closed form. A feature split again lower on a path replaces its
factor there (f_new / f_old) and takes back what the upper split counted for the leaves below (the telescoping term
in `_pass_up`), which is shap's unwinding of repeated features.

Cost: O(K) multiply-adds per node, tree and row (path-dependent TreeSHAP is O(L D^2), Linear TreeShap O(L D)),
vectorised over blocks of BLOCK_ROWS rows (the SIMD lanes; a row's directions are 0/1 multipliers, so no per-row
branch), no allocation per row. Memory: ~55 bytes per node (2.6 MB for 200 trees of depth 8, 5.1 MB for depth 14),
plus ~330 KB of workspace per thread at depth 14. Same numbers as shap to ~1e-15 (float64; tested to 1e-9).

Measured on the 2-core development machine (AMD EPYC, AVX-512, shared with other work, so per-core figures are rows per
CPU-second), 200 trees, min_samples_leaf=20, class_weight='balanced_subsample', 16,000 x 200 rows (bench/forestshap.py):
depth 8 (240 nodes per tree, K = 4) 11,000-15,000 rows/s per core; depth 14 (471 nodes, K = 7) 3,500-4,200 rows/s per
core, 7,800-8,300 rows/s on both cores (when the other work left one free) for batches of 1,000 and 50,000; shap's
TreeExplainer 35-270 rows/s (depth 8) and 65-90 (depth 14). One row:
1.2-1.5 ms (depth 8), 4 ms (depth 14) on one thread, ~2.5 ms with the trees shared by two. First call: ~3.5 s of
numba compilation, once (numba caches the compiled kernels beside the module; later processes load them). Cost is
proportional to trees x nodes per tree x K.
"""
from __future__ import annotations

import logging
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, NamedTuple

import numba
import numpy as np

logger = logging.getLogger(__name__)

BLOCK_ROWS = 128
"""Rows explained together through a tree: the inner loops run over them (8 AVX-512 vectors of float64)."""
FASTMATH = {"contract"}
"""Multiply-adds fused (rounding differs by ~1e-16); no assumption about NaN, which marks missing values."""


class Nodes(NamedTuple):
    """Every tree of the forest in depth-first order (a node, its left subtree, its right subtree), one entry per node.
    An edge is identified with the node it leads to."""

    start: np.ndarray       # trees + 1: first node of each tree
    depth: np.ndarray
    feature: np.ndarray     # split feature, -1 for a leaf
    threshold: np.ndarray   # the row goes left where x <= threshold (x as float32, as scikit-learn compares)
    nan_left: np.ndarray    # 1.0 where a missing value goes left
    is_left: np.ndarray     # the edge into the node is its parent's left one
    cover: np.ndarray       # c: product of the cover ratios of the edges on this feature down to here
    value: np.ndarray       # leaf: its probability of class 1 divided by the number of trees
    prev: np.ndarray        # the edge of the last split on the same feature above, -1 if none
    prev_depth: np.ndarray  # the depth of that edge's node
    group: np.ndarray       # the group of the node's split feature
    twig: np.ndarray        # internal node whose children are leaves, its feature not split above


class Quadrature(NamedTuple):
    points: np.ndarray      # t_k in (0, 1)
    weights: np.ndarray     # w_k, summing to 1
    complements: np.ndarray  # 1 - t_k


class Workspace(NamedTuple):
    """One thread's state for a block of rows, indexed by depth (the current path) and quadrature point."""

    q: np.ndarray           # depth x K x rows: Q at the node of that depth
    b: np.ndarray           # B of the node, accumulated from its children
    t: np.ndarray           # sum over internal children y of (h_y - c_y) B_y
    t_leaves: np.ndarray    # depth x rows: the same over leaf children (their B does not depend on t)
    t_set: np.ndarray       # depth: whether t holds a value yet
    hot: np.ndarray         # depth x rows: h of the edge into the node
    left: np.ndarray        # depth x rows: 1.0 where the row goes left at the node
    node: np.ndarray        # depth: the node on the current path
    acc: np.ndarray         # rows


_inline = numba.njit(cache=True, nogil=True, fastmath=FASTMATH, inline="always", _nrt=False)
# _nrt=False: no reference counting of the arrays passed around (it cost more than the arithmetic); these functions
# allocate nothing.


@_inline
def _fill(a: np.ndarray, d: int, n_points: int, nr: int, value: float) -> None:
    for k in range(n_points):
        for r in range(nr):
            a[d, k, r] = value


@_inline
def _hot(nodes: Nodes, x: int, d: int, nr: int, ws: Workspace) -> None:
    """h of edge x: 1.0 where the row takes it and every earlier edge on the same feature."""
    went_left, repeated, e_depth = nodes.is_left[x], nodes.prev[x] >= 0, nodes.prev_depth[x]
    for r in range(nr):
        h = ws.left[d - 1, r] if went_left else 1.0 - ws.left[d - 1, r]
        ws.hot[d, r] = h * ws.hot[e_depth, r] if repeated else h


@_inline
def _prefix(nodes: Nodes, quad: Quadrature, x: int, d: int, nr: int, ws: Workspace) -> None:
    """Q at node x: its parent's Q times f_x, over the factor of the last edge on the same feature if any."""
    c, e, e_depth = nodes.cover[x], nodes.prev[x], nodes.prev_depth[x]
    for k in range(quad.points.size):
        a, t = c * quad.complements[k], quad.points[k]
        if e < 0:
            for r in range(nr):
                ws.q[d, k, r] = ws.q[d - 1, k, r] * (a + ws.hot[d, r] * t)
        else:
            a_e = nodes.cover[e] * quad.complements[k]
            for r in range(nr):
                ws.q[d, k, r] = ws.q[d - 1, k, r] * (a + ws.hot[d, r] * t) / (a_e + ws.hot[e_depth, r] * t)


@_inline
def _open(nodes: Nodes, x: int, d: int, xt: np.ndarray, nr: int, ws: Workspace) -> None:
    """Internal node x at depth d: where the rows go (x as float32 <= threshold, NaN as the tree says), no sums yet."""
    f, threshold, nan = nodes.feature[x], nodes.threshold[x], nodes.nan_left[x]
    for r in range(nr):
        v = xt[f, r]
        ws.left[d, r] = nan if v != v else (1.0 if v <= threshold else 0.0)
        ws.t_leaves[d, r] = 0.0
    ws.t_set[d] = False
    ws.node[d] = x


@_inline
def _leaf(nodes: Nodes, quad: Quadrature, x: int, d: int, nr: int, ws: Workspace) -> None:
    """Leaf x, its parent's feature new on the path: B = v, so its (h - c) B does not depend on t."""
    v, c = nodes.value[x], nodes.cover[x]
    keep = 0.0 if nodes.is_left[x] else 1.0  # the left child comes first: it sets its parent's B
    for k in range(quad.points.size):
        a, t = v * c * quad.complements[k], v * quad.points[k]
        for r in range(nr):
            ws.b[d - 1, k, r] = keep * ws.b[d - 1, k, r] + a + ws.hot[d, r] * t
    for r in range(nr):
        ws.t_leaves[d - 1, r] += v * (ws.hot[d, r] - c)


@_inline
def _twig(nodes: Nodes, quad: Quadrature, x: int, d: int, nr: int, ws: Workspace) -> None:
    """Node x with two leaves, its feature new on the path; b = 1 where the row goes left: its children give
    B_x = (v_L c_L + v_R c_R)(1 - t) + (v_R + b (v_L - v_R)) t and sum_y (h_y - c_y) v_y = tau + b (v_L - v_R)."""
    v_l, v_r, c_l, c_r = nodes.value[x + 1], nodes.value[x + 2], nodes.cover[x + 1], nodes.cover[x + 2]
    base, slope, tau = v_l * c_l + v_r * c_r, v_l - v_r, v_r * (1.0 - c_r) - v_l * c_l
    for r in range(nr):
        ws.acc[r] = 0.0
    for k in range(quad.points.size):
        w, a, t = quad.weights[k], base * quad.complements[k], quad.points[k]
        for r in range(nr):
            ws.acc[r] += w * ws.q[d, k, r]
            ws.b[d, k, r] = a + (v_r + ws.left[d, r] * slope) * t
    for r in range(nr):
        ws.acc[r] *= tau + ws.left[d, r] * slope


@_inline
def _close(quad: Quadrature, d: int, nr: int, ws: Workspace) -> None:
    """The node at depth d, its subtree done: its feature gets sum_k w_k Q(t_k) sum_y (h_y - c_y) B_y(t_k)."""
    for r in range(nr):
        ws.acc[r] = 0.0
    for k in range(quad.points.size):
        w = quad.weights[k]
        if ws.t_set[d]:
            for r in range(nr):
                ws.acc[r] += w * ws.q[d, k, r] * (ws.t_leaves[d, r] + ws.t[d, k, r])
        else:
            for r in range(nr):
                ws.acc[r] += w * ws.q[d, k, r] * ws.t_leaves[d, r]


@_inline
def _attribute(nodes: Nodes, x: int, nr: int, ws: Workspace, phi: np.ndarray) -> None:
    g = nodes.group[x]
    for r in range(nr):
        phi[g, r] += ws.acc[r]


@_inline
def _pass_up(nodes: Nodes, quad: Quadrature, x: int, d: int, nr: int, ws: Workspace) -> None:
    """Adds subtree x (its B at depth d) to its parent's B and t. A feature split again replaces its factor (f_x over
    the factor f_e of its last edge e above) and takes back (h_e - c_e) / f_e, which e counts for these leaves."""
    c, e, e_depth = nodes.cover[x], nodes.prev[x], nodes.prev_depth[x]
    keep_b = 0.0 if nodes.is_left[x] else 1.0
    keep_t = 1.0 if ws.t_set[d - 1] else 0.0
    ws.t_set[d - 1] = True
    for k in range(quad.points.size):
        a, t = c * quad.complements[k], quad.points[k]
        if e < 0:
            for r in range(nr):
                h, b = ws.hot[d, r], ws.b[d, k, r]
                ws.b[d - 1, k, r] = keep_b * ws.b[d - 1, k, r] + (a + h * t) * b
                ws.t[d - 1, k, r] = keep_t * ws.t[d - 1, k, r] + (h - c) * b
        else:
            c_e = nodes.cover[e]
            a_e = c_e * quad.complements[k]
            for r in range(nr):
                h, h_e, b = ws.hot[d, r], ws.hot[e_depth, r], ws.b[d, k, r]
                inverse = 1.0 / (a_e + h_e * t)
                ratio = (a + h * t) * inverse
                ws.b[d - 1, k, r] = keep_b * ws.b[d - 1, k, r] + ratio * b
                ws.t[d - 1, k, r] = keep_t * ws.t[d - 1, k, r] + ((h - c) - (h_e - c_e) * ratio) * inverse * b


@numba.njit(cache=True, nogil=True, fastmath=FASTMATH, _nrt=False)
def _explain_tree(nodes: Nodes, quad: Quadrature, tree: int, xt: np.ndarray, nr: int, ws: Workspace,
                  phi: np.ndarray) -> None:
    """Adds tree `tree`'s SHAP values of the block's nr rows to phi (groups x rows): one depth-first pass, the
    current path on the workspace's stack; `done` is the subtree to add to its parent."""
    x, hi = nodes.start[tree], nodes.start[tree + 1]
    if nodes.feature[x] < 0:
        return  # a single leaf: no contribution
    _fill(ws.q, 0, quad.points.size, nr, 1.0)
    _open(nodes, x, 0, xt, nr, ws)
    top, x = 0, x + 1
    while True:
        if x < hi and nodes.depth[x] > top:  # x is a child of the node on top of the path
            d, done = top + 1, x
            _hot(nodes, x, d, nr, ws)
            if nodes.feature[x] < 0 and nodes.prev[x] < 0:
                _leaf(nodes, quad, x, d, nr, ws)
                x += 1
                continue
            if nodes.feature[x] < 0:  # a leaf below a feature split again: the general case, B = v
                _fill(ws.b, d, quad.points.size, nr, nodes.value[x])
                x += 1
            else:
                _prefix(nodes, quad, x, d, nr, ws)
                _open(nodes, x, d, xt, nr, ws)
                if not nodes.twig[x]:
                    top, x = d, x + 1
                    continue
                _twig(nodes, quad, x, d, nr, ws)
                _attribute(nodes, x, nr, ws, phi)
                x += 3  # its leaves are done
        else:
            d, done = top, ws.node[top]
            _close(quad, d, nr, ws)
            _attribute(nodes, done, nr, ws, phi)
            top -= 1
            if d == 0:
                return
        _pass_up(nodes, quad, done, d, nr, ws)


@numba.njit(cache=True, nogil=True)
def _workspace(max_depth: int, n_points: int) -> Workspace:
    shape = (max_depth + 1, n_points, BLOCK_ROWS)
    return Workspace(q=np.zeros(shape), b=np.zeros(shape), t=np.zeros(shape),
                     t_leaves=np.zeros((max_depth + 1, BLOCK_ROWS)), t_set=np.zeros(max_depth + 1, dtype=np.bool_),
                     hot=np.ones((max_depth + 1, BLOCK_ROWS)), left=np.zeros((max_depth + 1, BLOCK_ROWS)),
                     node=np.zeros(max_depth + 1, dtype=np.int64), acc=np.zeros(BLOCK_ROWS))


@numba.njit(cache=True, nogil=True)
def _explain(X: np.ndarray, nodes: Nodes, quad: Quadrature, max_depth: int, trees: tuple[int, int],
             out: np.ndarray) -> None:
    """out (rows x groups) = the SHAP values of X (float32) in trees[0] .. trees[1] - 1, a block of rows at a time."""
    n, m = X.shape
    ws = _workspace(max_depth, quad.points.size)
    xt = np.empty((m, BLOCK_ROWS), dtype=np.float32)
    phi = np.empty((out.shape[1], BLOCK_ROWS))
    for b0 in range(0, n, BLOCK_ROWS):
        nr = min(BLOCK_ROWS, n - b0)
        for i in range(nr):
            for j in range(m):
                xt[j, i] = X[b0 + i, j]
        phi[:] = 0.0
        for tree in range(trees[0], trees[1]):
            _explain_tree(nodes, quad, tree, xt, nr, ws, phi)
        for i in range(nr):
            for g in range(out.shape[1]):
                out[b0 + i, g] = phi[g, i]


def _tree_nodes(tree: Any) -> dict[str, np.ndarray]:
    """One scikit-learn tree in depth-first order, with each edge's cover product and last edge on its feature."""
    left, right, feature, weight = tree.children_left, tree.children_right, tree.feature, tree.weighted_n_node_samples
    rows: list[tuple[int, int, bool, float, int, int, int]] = []  # node, depth, is_left, cover, prev, its depth, |seen|
    stack: list[tuple[int, int, bool, dict[int, tuple[int, int, float]]]] = [(0, -1, False, {})]
    while stack:
        node, parent, went_left, seen = stack.pop()  # seen: feature -> (position, depth, cover) of its last edge
        depth = rows[parent][1] + 1 if parent >= 0 else 0
        cover, prev, prev_depth = 1.0, -1, 0
        if parent >= 0:
            split = int(feature[rows[parent][0]])
            prev, prev_depth, above = seen.get(split, (-1, 0, 1.0))
            cover = above * weight[node] / weight[rows[parent][0]]
            seen = {**seen, split: (len(rows), depth, cover)}
        rows.append((node, depth, went_left, cover, prev, prev_depth, len(seen)))
        if left[node] != -1:
            position = len(rows) - 1
            stack.append((int(right[node]), position, False, seen))
            stack.append((int(left[node]), position, True, seen))
    names = ("order", "depth", "is_left", "cover", "prev", "prev_depth", "distinct")
    return {name: np.asarray(column) for name, column in zip(names, zip(*rows))}


def _forest_nodes(trees: list[Any], group_of: np.ndarray) -> tuple[Nodes, int, float]:
    """(the trees' nodes, the most distinct features on a path, the expected value: sum_l v_l cover_l / cover_root)."""
    parts, offset, distinct, expected = [], 0, 0, 0.0
    for tree in trees:
        t = _tree_nodes(tree)
        order, leaf = t["order"], tree.children_left[t["order"]] == -1
        counts = tree.value[order, 0, :]
        value = np.where(leaf, counts[:, 1] / counts.sum(axis=1), 0.0) / len(trees)  # as shap (sklearn < 1.4: counts)
        expected += float(value @ (tree.weighted_n_node_samples[order] / tree.weighted_n_node_samples[0] * leaf))
        feature = np.where(leaf, -1, tree.feature[order])
        missing_left = getattr(tree, "missing_go_to_left", None)  # scikit-learn >= 1.3; before, NaN <= x is False
        after = np.r_[leaf, False, False]  # a node followed by two leaves in depth-first order is their parent
        twig = ~leaf & after[1:len(leaf) + 1] & after[2:] & np.r_[t["prev"][1:] < 0, False]
        parts.append({"depth": t["depth"], "feature": feature, "threshold": tree.threshold[order],
                      "nan_left": np.zeros(len(order)) if missing_left is None else missing_left[order].astype(float),
                      "is_left": t["is_left"], "cover": t["cover"], "value": value,
                      "prev": np.where(t["prev"] >= 0, t["prev"] + offset, -1), "prev_depth": t["prev_depth"],
                      "group": np.where(leaf, 0, group_of[np.maximum(feature, 0)]), "twig": twig})
        offset += len(order)
        distinct = max(distinct, int(t["distinct"].max()))
    start = np.cumsum([0] + [len(part["depth"]) for part in parts])
    columns = {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}
    types = {"threshold": np.float64, "nan_left": np.float64, "cover": np.float64, "value": np.float64,
             "is_left": np.bool_, "twig": np.bool_}
    nodes = Nodes(start=start.astype(np.int64), **{name: np.ascontiguousarray(column, dtype=types.get(name, np.int32))
                                                  for name, column in columns.items()})
    return nodes, distinct, expected


def gauss_legendre(n_points: int) -> Quadrature:
    """n points on [0, 1], exact for polynomials of degree <= 2 n - 1."""
    x, w = np.polynomial.legendre.leggauss(n_points)
    return Quadrature(points=(x + 1) / 2, weights=w / 2, complements=(1 - x) / 2)


@dataclass(frozen=True)
class ForestShap:
    """Path-dependent SHAP values of a binary scikit-learn random forest's probability of class 1, summed into groups
    of features (the fields of the contract). Plain arrays: pickles, and compiles on first use in each process."""

    nodes: Nodes
    quadrature: Quadrature
    max_depth: int
    n_features: int
    n_groups: int
    expected_value: float

    @classmethod
    def from_forest(cls, forest: Any, groups: np.ndarray | None = None) -> ForestShap:
        """`groups`: features x groups 0/1 matrix, one 1 per row (None: one group per feature)."""
        if getattr(forest, "n_outputs_", 1) != 1 or len(getattr(forest, "classes_", ())) != 2:
            raise ValueError("ForestShap explains binary single-output classifiers")
        n_features = int(forest.n_features_in_)
        if groups is None:
            group_of, n_groups = np.arange(n_features), n_features
        else:
            groups = np.asarray(groups)
            if groups.shape[0] != n_features or not np.array_equal(groups.sum(axis=1), np.ones(n_features)):
                raise ValueError(f"groups must be a {n_features} x n_groups 0/1 matrix with one 1 per row")
            group_of, n_groups = groups.argmax(axis=1), groups.shape[1]
        nodes, distinct, expected = _forest_nodes([e.tree_ for e in forest.estimators_], group_of)
        logger.debug("forest of %d trees, %d nodes, %d distinct features on a path at most", len(nodes.start) - 1,
                     len(nodes.depth), distinct)
        return cls(nodes=nodes, quadrature=gauss_legendre(max(1, math.ceil(distinct / 2))),
                   max_depth=int(nodes.depth.max()), n_features=n_features, n_groups=n_groups,
                   expected_value=expected)

    def contributions(self, X: np.ndarray, threads: int | None = None) -> np.ndarray:
        """rows x groups, float64; the bias (`expected_value`) is left out. `threads` (default: numba's thread count,
        NUMBA_NUM_THREADS) take tasks of up to 8 blocks of rows, or share the trees when there are few rows."""
        X = np.ascontiguousarray(X, dtype=np.float32)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(f"X must have {self.n_features} columns, got shape {X.shape}")
        n_trees = len(self.nodes.start) - 1
        threads = max(1, min(threads or numba.get_num_threads(), n_trees))
        if threads == 1 or not len(X):
            return self._explain(X, (0, n_trees))
        with ThreadPoolExecutor(threads) as pool:  # the kernels release the GIL
            if len(X) >= 2 * threads * BLOCK_ROWS:
                size = BLOCK_ROWS * min(8, len(X) // (4 * threads * BLOCK_ROWS) or 1)
                tasks = pool.map(lambda start: self._explain(X[start:start + size], (0, n_trees)),
                                 range(0, len(X), size))
                return np.concatenate(list(tasks))
            bounds = np.linspace(0, n_trees, threads + 1).astype(int)
            tasks = pool.map(lambda i: self._explain(X, (bounds[i], bounds[i + 1])), range(threads))
            return np.sum(list(tasks), axis=0)

    def warm_up(self) -> None:
        """Compiles the kernels (a few seconds, once per process): call it where a replica starts, not on a request."""
        self.contributions(np.zeros((1, self.n_features)), threads=1)

    def _explain(self, X: np.ndarray, trees: tuple[int, int]) -> np.ndarray:
        out = np.empty((len(X), self.n_groups))
        _explain(X, self.nodes, self.quadrature, self.max_depth, trees, out)
        return out
