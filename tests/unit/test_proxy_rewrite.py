from __future__ import annotations

from k3py.apiserver.kubelet_proxy.rewrite import rewrite_html, rewrite_url

PREFIX = "/api/v1/namespaces/ns/pods/web:1080/proxy"


def under(url: str) -> str:
    return rewrite_url(url, PREFIX, ("10.0.0.1:6443",))


def test_absolute_paths_of_this_server_go_under_the_proxy() -> None:
    assert under("/rewriteme") == f"{PREFIX}/rewriteme"
    assert under("/") == f"{PREFIX}/"
    assert under("/a/b/?x=1#top") == f"{PREFIX}/a/b/?x=1#top"
    assert under("https://10.0.0.1:6443/status") == f"{PREFIX}/status"
    for kept in ("relative/path", "https://example.com/x", f"{PREFIX}/already", "#frag", "mailto:x@y"):
        assert under(kept) == kept


def test_only_url_attributes_of_start_tags_change() -> None:
    page = (
        '<html><a href="/rewriteme">test</a> <A HREF=/x class="/keep">y</A>'
        '<img src=\'/i.png\' alt="/alt"><!-- <a href="/in-comment"> -->'
        '<script src="/s.js">var a = "<a href=\\"/in-script\\">";</script><p title="/t">/text</p></html>'
    )
    done = rewrite_html(page, under)
    assert f'<a href="{PREFIX}/rewriteme">test</a>' in done
    assert f'<A HREF="{PREFIX}/x" class="/keep">' in done
    assert f"<img src='{PREFIX}/i.png' alt=\"/alt\">" in done
    assert '<!-- <a href="/in-comment"> -->' in done
    assert f'<script src="{PREFIX}/s.js">var a = "<a href=\\"/in-script\\">";</script>' in done
    assert '<p title="/t">/text</p>' in done


def test_a_page_without_links_is_unchanged() -> None:
    page = "<!doctype html><html><body><p>hello &amp; <b>bye</b></p></body></html>"
    assert rewrite_html(page, under) == page


def test_a_pod_proxy_without_a_port_uses_the_first_container_port() -> None:
    from k3py.apiserver.kubelet_proxy.routes import first_container_port

    pod = {"spec": {"containers": [{"name": "a"}, {"name": "b", "ports": [{"containerPort": 9376}]}]}}
    assert first_container_port(pod) == 9376
    assert first_container_port({"spec": {"containers": [{"name": "a"}]}}) == 0
