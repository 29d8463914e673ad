"""W&B's ``api.runs(path, filters=..., order=...)``: the MongoDB-style queries W&B users
write select the same runs here, on every backend."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

import forebear
from forebear.runfilters import matches, ordered


@pytest.fixture
def api(store: forebear.Store) -> Iterator[forebear.Api]:
    """Four runs of project ``p`` (and one elsewhere), oldest first: a, b, c, d."""
    made = [
        ("a", {"lr": 0.1, "arch": "cnn"}, {"acc": 0.7}, ["baseline"], "finished"),
        ("b", {"lr": 0.01, "arch": "cnn"}, {"acc": 0.9}, ["tuned", "cv"], "finished"),
        ("c", {"lr": 0.001, "arch": "mlp"}, {}, [], "failed"),
        ("d", {"lr": 0.01, "arch": "mlp", "extra": True}, {"acc": 0.8}, ["cv"], "running"),
    ]
    for name, config, summary, tags, status in made:
        run = forebear.init(project="p", name=name, config=config, tags=tags, store=store)
        run.summary.update(summary)
        if status != "running":
            run.finish(status)
    with forebear.init(project="elsewhere", name="z", store=store):
        pass
    yield forebear.Api(store)
    run.finish()  # d, while its store is still there


def names(runs: list[forebear.Run]) -> list[str]:
    return [run.name for run in runs]


def test_w_and_b_filters_and_orders_select_runs(api: forebear.Api) -> None:
    assert names(api.runs("p")) == ["a", "b", "c", "d"]  # oldest first, as W&B's default
    assert names(api.runs("my-team/p")) == ["a", "b", "c", "d"]  # W&B's entity/project
    cases = [
        ({"state": "finished"}, ["a", "b"]),
        ({"state": {"$ne": "finished"}}, ["c", "d"]),
        ({"config.lr": 0.01}, ["b", "d"]),
        ({"config.lr.value": 0.01}, ["b", "d"]),  # W&B's own spelling of a config key
        ({"config.lr": {"$gte": 0.01, "$lt": 0.1}}, ["b", "d"]),
        ({"config.arch": {"$in": ["mlp", "rnn"]}}, ["c", "d"]),
        ({"config.arch": {"$nin": ["mlp"]}}, ["a", "b"]),
        ({"config.extra": {"$exists": True}}, ["d"]),
        ({"summary_metrics.acc": {"$gt": 0.75}}, ["b", "d"]),
        ({"summary_metrics.acc": {"$exists": False}}, ["c"]),
        ({"tags": "cv"}, ["b", "d"]),  # a list field matches when one item does
        ({"tags": {"$in": ["baseline", "tuned"]}}, ["a", "b"]),
        ({"display_name": {"$regex": "^[ab]$"}}, ["a", "b"]),
        ({"$or": [{"state": "failed"}, {"config.lr": 0.1}]}, ["a", "c"]),
        ({"$and": [{"config.arch": "cnn"}, {"summary_metrics.acc": {"$gt": 0.8}}]}, ["b"]),
        ({"$nor": [{"config.arch": "cnn"}, {"state": "running"}]}, ["c"]),
        ({"config.lr": {"$not": {"$gt": 0.005}}}, ["c"]),
        ({"config.lr": "0.01"}, []),  # no conversion: a string is not the number
    ]
    for query, expected in cases:
        assert names(api.runs("p", filters=query)) == expected, query
    assert names(api.runs("p", order="-created_at")) == ["d", "c", "b", "a"]
    first = api.runs("p")[0]
    assert first.created_at == first.started_at.isoformat()  # W&B's text form
    assert api.runs("p", filters={"created_at": {"$lte": first.created_at}}) == [first]
    assert names(api.runs("p", order="-summary_metrics.acc")) == ["b", "d", "a", "c"]
    assert names(api.runs("p", order="+config.lr", per_page=10)) == ["c", "b", "d", "a"]
    assert names(api.runs(filters={"display_name": "z"})) == ["z"]  # every project


def test_runs_without_filters_are_read_as_they_are_used(
    api: forebear.Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """W&B's ``Runs``: iterated a page at a time (two here), counted, indexed and sliced
    by asking the store for just those runs."""
    import forebear.run_listing

    monkeypatch.setattr(forebear.run_listing, "PAGE", 2)
    runs = api.runs("p")
    assert isinstance(runs, forebear.api.Runs) and len(runs) == 4 and bool(runs)
    assert names(runs) == ["a", "b", "c", "d"] and names(reversed(runs)) == ["d", "c", "b", "a"]
    assert (runs[0].name, runs[3].name, runs[-1].name, runs[-4].name) == ("a", "d", "d", "a")
    assert names(runs[1:3]) == ["b", "c"] and names(runs[::2]) == ["a", "c"]
    assert names(runs[3:1]) == [] and names(runs[-2:]) == ["c", "d"]
    for beyond in (4, -5, 10**30):
        with pytest.raises(IndexError, match="out of range"):
            runs[beyond]
    newest = api.runs("my-team/p", order="-createdAt")
    assert names(newest) == ["d", "c", "b", "a"] and newest[0].name == "d"
    assert len(api.runs()) == 5 and api.runs()[4].name == "z"  # every project
    assert runs[0] in runs and "a" not in names(api.runs("elsewhere"))
    with forebear.init(project="p", name="e", store=api.store):
        assert len(runs) == 5 and runs[-1].name == "e"  # read as it is used
    api.flush()  # what W&B's polling loop calls to see a run change: the store is read
    assert api.run(f"p/{runs[-1].id}").state == "finished"


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ({"state": {"$near": 1}}, "unknown operator '$near'"),
        ({"$where": "1"}, "unknown run filter '$where'"),
        ({"$or": {"state": "x"}}, "$or takes a list"),
        ({"config.lr": {"$in": 0.1}}, "$in for 'config.lr' takes a list"),
        ({"display_name": {"$regex": "("}}, "$regex for 'display_name'"),
        (["state"], "a run filter is a dict"),
    ],
)
def test_a_wrong_filter_is_refused_even_where_no_run_is(
    store: forebear.Store, query: object, says: str
) -> None:
    with pytest.raises(forebear.InvalidInput, match=says.replace("$", r"\$").replace("(", r"\(")):
        forebear.Api(store).runs("empty-project", filters=query)  # type: ignore[arg-type]


_VALUES = st.one_of(st.integers(-5, 5), st.sampled_from(["a", "b"]), st.none())
_DOCUMENTS = st.lists(
    st.dictionaries(st.sampled_from(["x", "y"]), st.one_of(_VALUES, st.lists(_VALUES))),
    max_size=8,
)
_CONDITIONS = st.one_of(
    _VALUES,
    st.builds(lambda op, v: {op: v}, st.sampled_from(["$gt", "$lte", "$eq", "$ne"]), _VALUES),
    st.builds(lambda v: {"$in": v}, st.lists(_VALUES, max_size=3)),
    st.builds(lambda v: {"$exists": v}, st.booleans()),
)


@given(documents=_DOCUMENTS, condition=_CONDITIONS, key=st.sampled_from(["x", "y"]))
def test_negations_and_orders_agree_with_their_definitions(
    documents: list[dict[str, object]], condition: object, key: str
) -> None:
    for document in documents:
        plain = matches(document, {key: condition})
        assert matches(document, {key: {"$not": condition}}) is (not plain)
        assert matches(document, {"$nor": [{key: condition}]}) is (not plain)
        assert matches(document, {"$or": [{key: condition}, {key: condition}]}) is plain
    indices = list(range(len(documents)))
    for order in (f"+{key}", f"-{key}"):
        sorted_indices = ordered(indices, documents, order)
        assert sorted(sorted_indices) == indices  # a permutation
        usable = [i for i in sorted_indices if isinstance(documents[i].get(key), (int, str))]
        assert sorted_indices[: len(usable)] == usable  # those without a value come last
