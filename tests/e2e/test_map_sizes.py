"""Map sizes from flags and from memory, and what a restart with other sizes does."""

import signal


def sizes(agent):
    return {m["name"]: m for m in agent.ctl_json("map", "list")}


def test_explicit_flags_win_over_the_ratio_and_a_pinned_map_keeps_its_size(lab, api, agent):
    agent.extra += ["--bpf-map-dynamic-size-ratio=0.0025", "--bpf-ct-global-any-max=4096",
                    "--bpf-lb-service-map-max=64"]
    agent.start()
    st = agent.status()
    derived = {m["name"]: m for m in st["map_sizes"]["maps"]}
    assert derived["ct4_any"]["source"] == "flag"
    assert derived["ct4_tcp"]["source"] == "dynamic"
    assert derived["lb4_services"]["source"] == "flag"
    assert st["map_sizes"]["total_memory"] > 0
    maps = sizes(agent)
    # What status says was derived is what the kernel's maps have.
    assert maps["ct4_any"]["max_entries"] == 4096
    assert maps["lb4_services"]["max_entries"] == 64
    for name in ("ct4_tcp", "nat4", "lb4_sock_rev"):
        assert maps[name]["max_entries"] == derived[name]["max_entries"], name
        assert maps[name]["max_entries"] >= 65536, name         # Cilium's floors

    # Restart asking for other sizes: the pinned maps (and their entries) are
    # kept, and status shows both numbers.
    agent.stop(signal.SIGTERM)
    agent.extra = ["--bpf-ct-global-any-max=8192"]
    agent.start()
    assert sizes(agent)["ct4_any"]["max_entries"] == 4096
    st = {m["name"]: m for m in agent.status()["maps"]}
    assert st["ct4_any"]["max_entries"] == 4096
    assert st["ct4_any"]["configured_max_entries"] == 8192
    assert "configured 8192 (pinned map kept)" in agent.ctl("status").stdout
    assert "pinned map keeps its size" in agent.log_tail(100)

    # cleanup, then a start: the new size applies.
    agent.stop(signal.SIGTERM)
    agent.ctl("cleanup", "--force")
    agent.start()
    assert sizes(agent)["ct4_any"]["max_entries"] == 8192


def test_bad_size_flags_are_one_line_errors(lab, api, agent):
    agent.extra += ["--bpf-nat-global-max=900000", "--bpf-ct-global-tcp-max=100000",
                    "--bpf-ct-global-any-max=100000"]
    agent.start(wait=False)
    assert agent.proc.wait(10) == 2
    assert "--bpf-nat-global-max: 900000 must not exceed the conntrack maps together " \
           "(200000)" in agent.log_tail(5)
