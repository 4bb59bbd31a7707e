"""Tests for descend.data: batching, validation, splitting, standardisation."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from descend.data import (
    Batches,
    NotFittedError,
    Standardizer,
    as_generator,
    batches,
    check_array,
    check_X_y,
    standardize,
    train_test_split,
)


def make_data(n=10, d=3):
    """X whose row i holds i in every column, so that a batch reveals which rows it took."""
    X = np.repeat(np.arange(n, dtype=np.float64)[:, None], d, axis=1)
    y = np.arange(n)
    return X, y


def epoch_rows(b):
    """Row ids of one epoch, in the order seen, checking X and y stayed paired."""
    seen = []
    for xb, yb in b:
        np.testing.assert_array_equal(xb[:, 0], yb)
        seen.append(yb)
    return np.concatenate(seen)


# --- batches: the three variants ---------------------------------------------------------------


@pytest.mark.parametrize(
    "n, batch_size, drop_last, sizes",
    [
        (10, "full", False, [10]),
        (10, "full", True, [10]),
        (10, 1, False, [1] * 10),
        (10, 1, True, [1] * 10),
        (10, 3, False, [3, 3, 3, 1]),
        (10, 3, True, [3, 3, 3]),
        (10, 5, False, [5, 5]),
        (10, 5, True, [5, 5]),
        (10, 10, False, [10]),
        (7, 6, True, [6]),
    ],
)
@pytest.mark.parametrize("shuffle", [True, False])
def test_update_counts_per_variant(n, batch_size, drop_last, sizes, shuffle):
    X, y = make_data(n)
    b = batches(X, y, batch_size=batch_size, shuffle=shuffle, seed=0, drop_last=drop_last)
    assert len(b) == len(sizes)
    assert [len(yb) for _, yb in b] == sizes
    assert b.n_samples == n
    assert b.batch_size == (n if batch_size == "full" else batch_size)


def test_variant_names_the_textbook_variant():
    X, y = make_data(10)
    assert batches(X, y, batch_size="full").variant == "batch"
    assert batches(X, y, batch_size=10).variant == "batch"
    assert batches(X, y, batch_size=1).variant == "stochastic"
    assert batches(X, y, batch_size=4).variant == "mini-batch"


@pytest.mark.parametrize("batch_size", [1, 3, 4, "full"])
def test_every_sample_seen_exactly_once_per_epoch(batch_size):
    X, y = make_data(11)
    b = batches(X, y, batch_size=batch_size, seed=3)
    for _ in range(3):
        np.testing.assert_array_equal(np.sort(epoch_rows(b)), np.arange(11))


def test_drop_last_sees_distinct_samples_and_skips_only_the_remainder():
    X, y = make_data(11)
    b = batches(X, y, batch_size=4, seed=1, drop_last=True)
    rows = epoch_rows(b)
    assert len(rows) == 8
    assert len(np.unique(rows)) == 8


def test_reshuffles_every_epoch():
    X, y = make_data(50)
    b = batches(X, y, batch_size=5, seed=0)
    first, second = epoch_rows(b), epoch_rows(b)
    assert not np.array_equal(first, second)
    assert not np.array_equal(first, np.arange(50))


def test_same_seed_reproduces_the_sequence_of_epochs():
    X, y = make_data(30)
    a = batches(X, y, batch_size=4, seed=42)
    b = batches(X, y, batch_size=4, seed=42)
    for _ in range(3):
        np.testing.assert_array_equal(epoch_rows(a), epoch_rows(b))
    c = batches(X, y, batch_size=4, seed=43)
    assert not np.array_equal(epoch_rows(batches(X, y, batch_size=4, seed=42)), epoch_rows(c))


def test_generator_seed_is_used_as_is():
    X, y = make_data(30)
    rng = np.random.default_rng(7)
    from_generator = batches(X, y, batch_size=4, seed=rng)
    from_int = batches(X, y, batch_size=4, seed=7)
    np.testing.assert_array_equal(epoch_rows(from_generator), epoch_rows(from_int))
    # The generator is shared, not copied: drawing from it moved the caller's generator too.
    assert rng.bit_generator.state != np.random.default_rng(7).bit_generator.state


def test_permutation_drawn_when_iter_is_called():
    X, y = make_data(20)
    a = batches(X, y, batch_size=5, seed=0)
    b = batches(X, y, batch_size=5, seed=0)
    first_a, second_a = iter(a), iter(a)
    first_b, second_b = iter(b), iter(b)
    # Consuming in a different order does not change which epoch is which.
    rows_second_a = np.concatenate([yb for _, yb in second_a])
    rows_first_a = np.concatenate([yb for _, yb in first_a])
    np.testing.assert_array_equal(rows_first_a, np.concatenate([yb for _, yb in first_b]))
    np.testing.assert_array_equal(rows_second_a, np.concatenate([yb for _, yb in second_b]))


def test_full_batch_yields_the_arrays_themselves_unshuffled():
    X, y = make_data(10)
    b = batches(X, y, batch_size="full", shuffle=True, seed=0)
    for _ in range(2):
        ((xb, yb),) = list(b)
        assert xb is X
        assert yb is y


def test_full_batch_does_not_advance_the_generator():
    X, y = make_data(10)
    rng = np.random.default_rng(0)
    state = rng.bit_generator.state
    list(batches(X, y, seed=rng))
    assert rng.bit_generator.state == state


def test_y_none_yields_none():
    X, _ = make_data(10)
    assert all(yb is None for _, yb in batches(X, batch_size=3, seed=0))
    assert all(yb is None for _, yb in batches(X))


def test_unshuffled_batches_are_contiguous_views():
    X, y = make_data(10)
    out = list(batches(X, y, batch_size=4, shuffle=False))
    for i, (xb, yb) in enumerate(out):
        assert np.shares_memory(xb, X) and np.shares_memory(yb, y)
        np.testing.assert_array_equal(yb, np.arange(10)[4 * i : 4 * i + 4])


def test_shuffled_batches_are_copies_of_their_rows_only():
    X, y = make_data(10)
    for xb, yb in batches(X, y, batch_size=4, seed=0):
        assert not np.shares_memory(xb, X)
        np.testing.assert_array_equal(xb, X[yb])


def test_batch_size_one_is_two_dimensional():
    X, y = make_data(6, d=4)
    for xb, yb in batches(X, y, batch_size=1, seed=0):
        assert xb.shape == (1, 4)
        assert yb.shape == (1,)
    for xb, yb in batches(X, y, batch_size=1, shuffle=False):
        assert xb.shape == (1, 4)
        assert yb.shape == (1,)


@pytest.mark.parametrize("order", ["C", "F"])
def test_shuffled_single_rows_are_the_rows_of_the_same_order(order):
    # batch size 1: one-row views of a C-ordered X (copies otherwise), the same rows, in the
    # order the generator draws, resumed mid-epoch at the same place
    X, y = make_data(12, d=3)
    X = np.asarray(X, order=order)
    b = batches(X, y, batch_size=1, seed=0)
    rng = np.random.default_rng(0)
    for _ in range(2):  # two epochs: the permutation is drawn at each
        order_drawn = rng.permutation(12)
        got = list(b)
        assert [int(yb[0]) for _, yb in got] == order_drawn.tolist()
        for xb, yb in got:
            assert xb.flags.c_contiguous and xb.shape == (1, 3)
            np.testing.assert_array_equal(xb, X[yb])
            assert np.shares_memory(xb, X) == (order == "C")
    resumed = batches(X, y, batch_size=1, seed=5)
    whole = [yb[0] for _, yb in batches(X, y, batch_size=1, seed=5)]
    assert [yb[0] for _, yb in resumed.epoch(start=7)] == whole[7:]


def test_two_dimensional_y_is_batched_by_rows():
    X, y = make_data(9)
    Y = np.eye(9)[y]
    for xb, yb in batches(X, Y, batch_size=4, seed=0):
        assert yb.shape[1] == 9
        np.testing.assert_array_equal(yb.argmax(axis=1), xb[:, 0])


def test_lists_are_accepted():
    b = batches([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]], [0, 1, 2], batch_size=2, shuffle=False)
    xb, yb = next(iter(b))
    assert isinstance(xb, np.ndarray)
    np.testing.assert_array_equal(yb, [0, 1])


def test_attributes_and_repr():
    X, y = make_data(10)
    b = batches(X, y, batch_size=3, shuffle=False, drop_last=True)
    assert (b.n_samples, b.batch_size, b.shuffle, b.drop_last) == (10, 3, False, True)
    assert isinstance(b, Batches)
    assert "batch_size=3" in repr(b) and "n_batches=3" in repr(b)


def test_memmap_is_read_one_batch_at_a_time(tmp_path):
    X, y = make_data(40, d=5)
    path = tmp_path / "X.npy"
    np.save(path, X.astype(np.float32))
    mm = np.load(path, mmap_mode="r")
    b = batches(mm, y, batch_size=8, seed=0)
    # The object holds a view of the mapped file, not an in-memory copy.
    assert not b.X.flags.owndata
    assert b.X.__array_interface__["data"][0] == mm.__array_interface__["data"][0]
    seen = []
    for xb, yb in b:
        assert type(xb) is np.ndarray
        assert xb.shape == (8, 5)
        np.testing.assert_array_equal(xb, X[yb].astype(np.float32))
        seen.append(yb)
    np.testing.assert_array_equal(np.sort(np.concatenate(seen)), np.arange(40))
    xb, _ = next(iter(batches(mm, y, batch_size=8, shuffle=False)))
    assert type(xb) is np.ndarray
    np.testing.assert_array_equal(xb, X[:8])


def test_memmap_with_nan_is_not_scanned(tmp_path):
    X, _ = make_data(10)
    X[3, 1] = np.nan
    np.save(tmp_path / "X.npy", X)
    b = batches(np.load(tmp_path / "X.npy", mmap_mode="r"), batch_size=5, shuffle=False)
    assert len(b) == 2


# --- batches: errors -----------------------------------------------------------------------------


def test_error_one_dimensional_X_suggests_reshape():
    with pytest.raises(ValueError, match=r"X must be 2-D.*X\.reshape\(-1, 1\)"):
        batches(np.arange(5.0))


def test_error_three_dimensional_X():
    with pytest.raises(ValueError, match=r"X must be 2-D.*3-D"):
        batches(np.zeros((4, 2, 2)))


def test_error_lengths_differ():
    X, y = make_data(10)
    with pytest.raises(ValueError, match=r"X and y have different numbers of samples.*10.*9"):
        batches(X, y[:9])


@pytest.mark.parametrize("bad", ["half", "FULL", ""])
def test_error_batch_size_unknown_string(bad):
    X, y = make_data(10)
    with pytest.raises(ValueError, match=r"batch_size must be 'full' or a positive int"):
        batches(X, y, batch_size=bad)


@pytest.mark.parametrize("bad", [True, False, 2.0, 2.5, None, [2]])
def test_error_batch_size_wrong_type(bad):
    X, y = make_data(10)
    with pytest.raises(TypeError, match="batch_size"):
        batches(X, y, batch_size=bad)


def test_error_batch_size_whole_float_suggests_int():
    X, y = make_data(10)
    with pytest.raises(TypeError, match=r"batch_size=4"):
        batches(X, y, batch_size=4.0)


@pytest.mark.parametrize("bad", [0, -1, np.int64(-3)])
def test_error_batch_size_not_positive(bad):
    X, y = make_data(10)
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        batches(X, y, batch_size=bad)


def test_error_batch_size_larger_than_n_samples():
    X, y = make_data(5)
    with pytest.raises(ValueError, match=r"batch_size=6 .*\(5\).*'full'"):
        batches(X, y, batch_size=6)


def test_numpy_int_batch_size_is_accepted():
    X, y = make_data(10)
    assert len(batches(X, y, batch_size=np.int32(4))) == 3


@pytest.mark.parametrize("empty", [np.zeros((0, 3)), np.zeros((3, 0)), []])
def test_error_empty_X(empty):
    with pytest.raises(ValueError, match="X is empty"):
        batches(empty)


def test_error_non_numeric_X():
    with pytest.raises(TypeError, match=r"X must hold numbers.*<U"):
        batches(np.array([["a", "b"], ["c", "d"]]))


@pytest.mark.parametrize("name", ["shuffle", "drop_last"])
def test_error_flags_must_be_bool(name):
    X, y = make_data(10)
    with pytest.raises(TypeError, match=name):
        batches(X, y, batch_size=2, **{name: "yes"})


@pytest.mark.parametrize(
    "seed, error, match",
    [
        (True, TypeError, "seed must be None, an int"),
        (-1, ValueError, "seed must be a non-negative int"),
        ("0", TypeError, "seed must be None, an int"),
        (1.5, TypeError, "seed must be None, an int"),
        (np.random.RandomState(0), TypeError, r"np\.random\.default_rng"),
    ],
)
def test_error_bad_seed(seed, error, match):
    X, y = make_data(10)
    with pytest.raises(error, match=match):
        batches(X, y, batch_size=2, seed=seed)


def test_as_generator_names_the_argument():
    with pytest.raises(TypeError, match="random_state must be"):
        as_generator("x", name="random_state")
    assert isinstance(as_generator(np.int64(3)), np.random.Generator)


# --- check_X_y -----------------------------------------------------------------------------------


def test_check_X_y_returns_arrays_without_copying():
    X, y = make_data(10)
    X2, y2 = check_X_y(X, y)
    assert X2 is X and y2 is y
    assert check_X_y(X) == (X, None)


def test_check_X_y_converts_lists():
    X, y = check_X_y([[1, 2], [3, 4]], [True, False])
    assert isinstance(X, np.ndarray) and X.dtype.kind == "i"
    assert y.dtype == np.bool_


def test_check_X_y_memmap_not_copied(tmp_path):
    np.save(tmp_path / "X.npy", np.ones((6, 2)))
    mm = np.load(tmp_path / "X.npy", mmap_mode="r")
    X, _ = check_X_y(mm)
    assert not X.flags.owndata
    assert X.__array_interface__["data"][0] == mm.__array_interface__["data"][0]


def test_check_X_y_counts_nan_and_reports_first_row():
    X, y = make_data(10)
    X[4, 1] = np.nan
    X[7, 0] = np.nan
    X[8, 2] = np.inf
    with pytest.raises(
        ValueError,
        match=r"X_val contains 2 NaN values and 1 infinite value \(first in row 4\).*impute",
    ):
        check_X_y(X, y, name_X="X_val")


def test_check_X_y_rejects_nan_in_float32_and_inf_in_y():
    X, y = make_data(5)
    X = X.astype(np.float32)
    X[2, 0] = -np.inf
    with pytest.raises(ValueError, match=r"X contains 1 infinite value \(first in row 2\)"):
        check_X_y(X)
    y = np.array([0.0, 1.0, np.nan, 2.0, np.nan])
    with pytest.raises(ValueError, match=r"y_train contains 2 NaN values \(first in row 2\)"):
        check_X_y(make_data(5)[0], y, name_y="y_train")


def test_check_X_y_finite_false_skips_the_scan():
    X = np.array([[np.nan, 1.0]])
    assert check_X_y(X, finite=False)[0] is X


@pytest.mark.parametrize(
    "X, match",
    [
        (np.array([[1, "a"]], dtype=object), "dtype object"),
        (np.array([["1.0", "2.0"]]), "dtype <U3"),
        (np.array([[1 + 2j, 3]]), "dtype complex128"),
    ],
)
def test_check_X_y_rejects_non_numeric(X, match):
    with pytest.raises(TypeError, match=rf"X_test must hold numbers.*{match}"):
        check_X_y(X, name_X="X_test")


def test_check_X_y_rejects_non_numeric_y():
    X, _ = make_data(2)
    with pytest.raises(TypeError, match=r"y must hold numbers.*np\.unique"):
        check_X_y(X, ["cat", "dog"])


def test_check_X_y_rejects_ragged_lists():
    with pytest.raises(ValueError, match="X could not be converted"):
        check_X_y([[1.0, 2.0], [3.0]])


@pytest.mark.parametrize(
    "y, match",
    [
        (np.float64(1.0), "y must have shape.*scalar"),
        (np.zeros((10, 2, 2)), "y must have shape.*3-D"),
        (np.zeros(9), "different numbers of samples"),
        (np.zeros((10, 0)), "y is empty"),
    ],
)
def test_check_X_y_rejects_bad_y(y, match):
    X, _ = make_data(10)
    with pytest.raises(ValueError, match=match):
        check_X_y(X, y)


def test_check_X_y_scalar_X():
    with pytest.raises(ValueError, match="X must be 2-D.*scalar"):
        check_X_y(3.0)


def test_check_X_y_allow_nd():
    images = np.zeros((4, 8, 8))
    assert check_X_y(images, np.arange(4), allow_nd=True)[0] is images
    with pytest.raises(ValueError, match=r"reshape\(len\(X\), -1\)"):
        check_X_y(images)


def test_check_array_one_sample_hint():
    with pytest.raises(ValueError, match=r"reshape\(1, -1\)"):
        check_array([1.0, 2.0])


# --- train_test_split ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "n, test_size, n_test",
    [(20, 0.25, 5), (10, 0.25, 3), (10, 0.7, 7), (10, 0.3, 3), (10, 3, 3), (10, 9, 9), (2, 0.5, 1)],
)
def test_split_sizes(n, test_size, n_test):
    X, y = make_data(n)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size, seed=0)
    assert (len(X_tr), len(X_te), len(y_tr), len(y_te)) == (n - n_test, n_test, n - n_test, n_test)


def test_split_partitions_the_rows_and_keeps_pairs():
    X, y = make_data(30)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, 0.3, seed=1)
    np.testing.assert_array_equal(X_tr[:, 0], y_tr)
    np.testing.assert_array_equal(X_te[:, 0], y_te)
    np.testing.assert_array_equal(np.sort(np.concatenate([y_tr, y_te])), np.arange(30))


def test_split_is_reproducible_and_shuffled():
    X, y = make_data(30)
    a = train_test_split(X, y, seed=5)
    b = train_test_split(X, y, seed=np.random.default_rng(5))
    c = train_test_split(X, y, seed=6)
    for u, v in zip(a, b, strict=True):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(a[3], c[3])
    assert not np.array_equal(a[2], np.arange(len(a[2])))


def test_split_without_shuffle_holds_out_the_last_rows_as_views():
    X, y = make_data(10)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, 0.2, shuffle=False)
    np.testing.assert_array_equal(y_tr, np.arange(8))
    np.testing.assert_array_equal(y_te, [8, 9])
    assert np.shares_memory(X_tr, X) and np.shares_memory(X_te, X)


def test_split_y_none():
    X, _ = make_data(10)
    X_tr, X_te, y_tr, y_te = train_test_split(X, None, 4, seed=0)
    assert (X_tr.shape, X_te.shape, y_tr, y_te) == ((6, 3), (4, 3), None, None)


def test_stratified_split_keeps_class_proportions():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], [50, 30, 20])
    rng.shuffle(y)
    X = np.arange(100.0)[:, None]
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, 0.25, stratify=True, seed=0)
    assert np.bincount(y_te).tolist() in ([13, 7, 5], [12, 8, 5])
    np.testing.assert_array_equal(y[X_te[:, 0].astype(int)], y_te)
    np.testing.assert_array_equal(np.bincount(y_tr) + np.bincount(y_te), [50, 30, 20])


@settings(max_examples=60, deadline=None)
@given(
    counts=st.lists(st.integers(min_value=2, max_value=40), min_size=2, max_size=6),
    fraction=st.floats(min_value=0.05, max_value=0.6),
    seed=st.integers(min_value=0, max_value=2**16),
)
def test_stratified_split_within_one_sample_per_class(counts, fraction, seed):
    y = np.repeat(np.arange(len(counts)), counts)
    n = len(y)
    X = np.arange(n, dtype=np.float64)[:, None]
    _, X_te, _, y_te = train_test_split(X, y, fraction, stratify=True, seed=seed)
    n_test = len(y_te)
    per_class = np.bincount(y_te, minlength=len(counts))
    exact = np.array(counts) * n_test / n
    assert np.all(np.abs(per_class - exact) < 1)
    assert len(np.unique(X_te)) == n_test


def test_stratified_split_interleaves_classes_when_shuffled():
    y = np.repeat([0, 1], [40, 40])
    X = np.arange(80.0)[:, None]
    _, _, y_tr, y_te = train_test_split(X, y, 0.5, stratify=True, seed=0)
    assert np.count_nonzero(np.diff(y_te)) > 2
    assert np.count_nonzero(np.diff(y_tr)) > 2


def test_stratified_split_without_shuffle_takes_last_of_each_class_in_order():
    y = np.array([0, 1, 0, 1, 0, 1, 0, 1])
    X = np.arange(8.0)[:, None]
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, 4, stratify=True, shuffle=False)
    np.testing.assert_array_equal(X_te[:, 0], [4, 5, 6, 7])
    np.testing.assert_array_equal(X_tr[:, 0], [0, 1, 2, 3])


def test_stratified_split_with_one_hot_y():
    labels = np.repeat([0, 1, 2], [20, 10, 10])
    Y = np.eye(3)[labels]
    X = np.arange(40.0)[:, None]
    _, _, _, Y_te = train_test_split(X, Y, 0.25, stratify=True, seed=0)
    per_class = np.bincount(Y_te.argmax(axis=1), minlength=3)
    # Exact shares are 5, 2.5 and 2.5 of the 10 test rows.
    assert per_class[0] == 5 and sorted(per_class[1:].tolist()) == [2, 3]


@pytest.mark.parametrize(
    "test_size, error, match",
    [
        (0.0, ValueError, r"test_size=0\.0 .*must be in \(0, 1\)"),
        (1.0, ValueError, r"test_size=1\.0 .*must be in \(0, 1\)"),
        (-0.2, ValueError, r"must be in \(0, 1\)"),
        (0.99, ValueError, r"test_size=0\.99 of 10 samples leaves no training samples"),
        (0, ValueError, r"test_size=0 must be between 1 and 9 \(X has 10 samples"),
        (10, ValueError, r"test_size=10 must be between 1 and 9"),
        (True, TypeError, "test_size must be a float in"),
        ("0.2", TypeError, "test_size must be a float in"),
        (None, TypeError, "test_size must be a float in"),
    ],
)
def test_split_errors_on_test_size(test_size, error, match):
    X, y = make_data(10)
    with pytest.raises(error, match=match):
        train_test_split(X, y, test_size)


def test_split_errors_on_stratify():
    X, y = make_data(10)
    with pytest.raises(ValueError, match="stratify=True needs the class labels y"):
        train_test_split(X, None, stratify=True)
    with pytest.raises(TypeError, match="stratify must be True or False"):
        train_test_split(X, y, stratify=y)
    with pytest.raises(ValueError, match=r"at least 2 samples of every class.*class 1 has 1"):
        train_test_split(X, np.array([0] * 9 + [1]), stratify=True)
    with pytest.raises(TypeError, match="shuffle must be True or False"):
        train_test_split(X, y, shuffle=1)


def test_split_errors_on_inputs():
    with pytest.raises(ValueError, match="X has 1 sample; splitting needs at least 2"):
        train_test_split(np.ones((1, 2)), [0])
    with pytest.raises(ValueError, match="X and y have different numbers of samples"):
        train_test_split(np.ones((4, 2)), [0, 1, 0])


# --- Standardizer --------------------------------------------------------------------------------


def test_standardizer_statistics_and_transform():
    rng = np.random.default_rng(0)
    X = rng.normal(loc=[5.0, -3.0, 100.0], scale=[2.0, 0.1, 30.0], size=(200, 3))
    scaler = Standardizer()
    assert scaler.fit(X) is scaler
    np.testing.assert_allclose(scaler.mean_, X.mean(axis=0))
    np.testing.assert_allclose(scaler.scale_, X.std(axis=0))
    assert scaler.n_features_in_ == 3
    Z = scaler.transform(X)
    np.testing.assert_allclose(Z.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(Z.std(axis=0), 1.0)


def test_standardizer_round_trip():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(50, 4)) * [1.0, 10.0, 0.01, 1000.0]
    scaler = Standardizer().fit(X)
    np.testing.assert_allclose(scaler.inverse_transform(scaler.transform(X)), X, rtol=1e-12)
    np.testing.assert_allclose(Standardizer().fit_transform(X), scaler.transform(X))


def test_standardizer_constant_features_become_zero_not_nan():
    X = np.column_stack([np.arange(5.0), np.full(5, 0.1), np.zeros(5), np.full(5, 7.0)])
    scaler = Standardizer().fit(X)
    np.testing.assert_array_equal(scaler.scale_[1:], 1.0)
    Z = scaler.transform(X)
    assert np.isfinite(Z).all()
    # Exactly zero, also for 0.1 whose computed mean and std carry rounding error.
    np.testing.assert_array_equal(Z[:, 1:], 0.0)
    np.testing.assert_array_equal(scaler.inverse_transform(Z)[:, 1:], X[:, 1:])


def test_standardizer_dtypes():
    X32 = np.array([[1.0, 2.0], [3.0, 6.0]], dtype=np.float32)
    scaler = Standardizer().fit(X32)
    assert scaler.mean_.dtype == np.float64
    assert scaler.transform(X32).dtype == np.float32
    assert scaler.inverse_transform(X32).dtype == np.float32
    Xint = np.array([[1, 2], [3, 6]])
    assert Standardizer().fit_transform(Xint).dtype == np.float64
    np.testing.assert_array_equal(Standardizer().fit_transform(Xint), [[-1, -1], [1, 1]])


def test_standardizer_does_not_modify_input():
    X = np.array([[1.0, 2.0], [3.0, 6.0]])
    original = X.copy()
    scaler = Standardizer().fit(X)
    scaler.transform(X)
    scaler.inverse_transform(X)
    np.testing.assert_array_equal(X, original)


def test_standardizer_before_fit_raises_clear_error():
    scaler = Standardizer()
    for method in (scaler.transform, scaler.inverse_transform):
        with pytest.raises(NotFittedError, match=r"not fitted yet; call fit\(X_train\)"):
            method([[1.0]])
    assert issubclass(NotFittedError, ValueError)
    assert not hasattr(scaler, "mean_")


def test_standardizer_feature_count_mismatch():
    scaler = Standardizer().fit(np.ones((4, 3)))
    with pytest.raises(ValueError, match=r"X has 2 features.*n_features=3"):
        scaler.transform(np.ones((4, 2)))
    with pytest.raises(ValueError, match=r"X has 4 features.*n_features=3"):
        scaler.inverse_transform(np.ones((4, 4)))


def test_standardizer_validates_input():
    with pytest.raises(ValueError, match="X contains 1 NaN value"):
        Standardizer().fit([[1.0], [np.nan]])
    with pytest.raises(ValueError, match=r"X\.reshape\(-1, 1\)"):
        Standardizer().fit(np.arange(3.0))


def test_standardize_fits_on_the_first_array_only():
    X_train = np.array([[0.0, 10.0], [2.0, 30.0]])
    X_val = np.array([[4.0, 50.0]])
    X_test = np.array([[1.0, 20.0], [2.0, 10.0]])
    out = standardize(X_train, X_val, X_test)
    assert isinstance(out, tuple) and len(out) == 3
    np.testing.assert_array_equal(out[0], [[-1.0, -1.0], [1.0, 1.0]])
    np.testing.assert_array_equal(out[1], [[3.0, 3.0]])
    np.testing.assert_array_equal(out[2], [[0.0, 0.0], [1.0, -1.0]])
    (alone,) = standardize(X_train)
    np.testing.assert_array_equal(alone, out[0])


def test_standardize_names_the_bad_argument():
    with pytest.raises(ValueError, match=r"others\[1\] has 3 features.*n_features=2"):
        standardize(np.ones((3, 2)), np.ones((1, 2)), np.ones((1, 3)))


@pytest.mark.parametrize("shuffle", [True, False])
def test_memory_mapped_batches_read_by_pread_equal_the_in_memory_batches(
    tmp_path, shuffle, monkeypatch
):
    from descend.data import batching

    monkeypatch.setattr(batching, "PREAD_MIN_BYTES", 0)  # read even this small file by pread
    calls = []
    real_preadv = batching.os.preadv
    monkeypatch.setattr(batching.os, "preadv", lambda *a: calls.append(1) or real_preadv(*a))
    rng = np.random.default_rng(0)
    X = rng.normal(size=(103, 5)).astype(np.float32)
    y = rng.integers(0, 3, size=103)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    Xm = np.load(tmp_path / "X.npy", mmap_mode="r")
    ym = np.load(tmp_path / "y.npy", mmap_mode="r")
    in_memory = batches(X, y, batch_size=10, shuffle=shuffle, seed=3)
    mapped = batches(Xm, ym, batch_size=10, shuffle=shuffle, seed=3)
    for _ in range(2):
        pairs = list(zip(in_memory, mapped, strict=True))
        assert len(pairs) == 11
        for (xa, ya), (xb, yb) in pairs:
            assert type(xb) is np.ndarray and not isinstance(xb, np.memmap)
            np.testing.assert_array_equal(xa, xb)
            np.testing.assert_array_equal(ya, yb)
    assert calls  # the rows did come by pread


def test_a_writable_memory_map_is_read_through_the_map(tmp_path, monkeypatch):
    from descend.data import batching

    monkeypatch.setattr(batching, "PREAD_MIN_BYTES", 0)
    # mode "r+" may hold changes not yet in the file: the batches must show them.
    np.save(tmp_path / "X.npy", np.zeros((6, 2), np.float32))
    Xm = np.load(tmp_path / "X.npy", mmap_mode="r+")
    Xm[2] = 7.0
    (xb, _), *_ = list(batches(Xm, batch_size=3, shuffle=False))
    assert xb[2].tolist() == [7.0, 7.0]


# --- batches of a memory map: each checked for NaN and inf as it is read ------------------------


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_memory_mapped_batch_with_a_bad_value_is_stopped_naming_its_row(tmp_path, bad, dtype):
    X = np.random.default_rng(0).random((40, 6)).astype(dtype)
    X[27, 4] = bad
    np.save(tmp_path / "X.npy", X)
    b = batches(np.load(tmp_path / "X.npy", mmap_mode="r"), batch_size=8, shuffle=True, seed=1)
    seen = 0
    with pytest.raises(ValueError, match=r"X holds NaN or inf in row 27 \(found when its batch"):
        for xb, _ in b:
            assert np.isfinite(xb).all()  # no bad batch is handed out
            seen += 1
    assert seen < 5


def test_huge_finite_values_whose_row_sums_overflow_are_not_taken_for_inf(tmp_path):
    big = np.finfo(np.float32).max
    X = np.full((12, 4), big, np.float32)  # every row sums to inf in float32
    np.save(tmp_path / "X.npy", X)
    b = batches(np.load(tmp_path / "X.npy", mmap_mode="r"), batch_size=5, shuffle=False)
    assert sum(len(xb) for xb, _ in b) == 12


def test_check_batch_finite_names_the_row_of_the_data_set_small_batch_or_large(monkeypatch):
    from descend.data import validation

    for direct in (1 << 16, 0):  # by np.isfinite, or by all_finite
        monkeypatch.setattr(validation, "BATCH_CHECK_DIRECT", direct)
        xb = np.ones((4, 3), np.float32)
        validation.check_batch_finite(xb, np.arange(4), slice(8, 12))
        xb[2, 0] = np.nan
        with pytest.raises(ValueError, match="row 10 "):
            validation.check_batch_finite(xb, np.arange(4), slice(8, 12))
        y = np.array([0.0, np.inf, 1.0, 2.0])
        with pytest.raises(ValueError, match="y holds NaN or inf in row 5 "):
            validation.check_batch_finite(np.ones((4, 3)), y, np.array([3, 5, 7, 9]))
