"""The repository URL as one setting: with it the repository and Binder buttons show,
without it neither does; the Binder environment builds the package on CPU torch."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from conftest import REPO

from gardenpath.sphinxext import _buttons_follow_the_repository


def _options(url: str) -> dict:
    options = {"repository_url": url, "launch_buttons": {"binderhub_url": "https://mybinder.org",
                                                         "notebook_interface": "jupyterlab"}}
    _buttons_follow_the_repository(None, SimpleNamespace(html_theme_options=options))
    return options


def test_buttons_show_only_with_a_repository_url() -> None:
    shown = _options("https://github.com/someone/gardenpath")
    assert shown["use_repository_button"] is True
    assert shown["launch_buttons"]["binderhub_url"] == "https://mybinder.org"
    hidden = _options("")
    assert hidden["use_repository_button"] is False and hidden["launch_buttons"] == {}


def test_binder_environment_is_python_311_cpu_torch_and_the_package() -> None:
    binder = REPO / "binder"
    assert (binder / "runtime.txt").read_text().strip() == "python-3.11"
    reqs = (binder / "requirements.txt").read_text()
    assert "https://download.pytorch.org/whl/cpu" in reqs  # not the CUDA build
    assert "-r ../requirements.txt" in reqs  # the same pins as the book (jupytext included)
    assert "jupytext==" in (REPO / "requirements.txt").read_text()
    post = (binder / "postBuild").read_text()
    assert "pip install" in post and "--no-deps" in post and " ." in post
    assert "Jupytext Notebook" in post  # .py files open as notebooks
    assert Path(binder / "postBuild").stat().st_mode & 0o111
