"""The socket-destroy, UDP conntrack purge and invalid-state TCP tests of
test_svc_stale_sockets.py, run against the session's real kube-apiserver: the agent takes
the Services and EndpointSlices (replaced by update, with the resourceVersion) from it.
The test bodies are those of test_svc_stale_sockets.py; the invalid-state TCP test runs
its NodePort case only (the ClusterIP case creates the same kinds of object).
"""

import pytest

import test_svc_stale_sockets as stale

REAL = pytest.mark.parametrize("apiserver", ["real"], indirect=True)


@REAL
@pytest.mark.parametrize("proto", [
    pytest.param("tcp", marks=pytest.mark.kpr("socket-destroy-tcp")),
    pytest.param("udp", marks=pytest.mark.kpr("socket-destroy-udp")),
])
def test_sockets_to_a_deleted_backend_are_destroyed_others_stay(lab1, api, start_agent,
                                                                 proto):
    stale.test_sockets_to_a_deleted_backend_are_destroyed_others_stay(lab1, api, start_agent,
                                                                      proto)


@REAL
@pytest.mark.kpr("udp-conntrack-flushed")
def test_udp_service_entry_of_a_deleted_backend_is_purged_without_traffic(lab1, api,
                                                                          start_agent):
    stale.test_udp_service_entry_of_a_deleted_backend_is_purged_without_traffic(
        lab1, api, start_agent)


@REAL
@pytest.mark.kpr("invalid-tcp-dropped")
def test_invalid_state_tcp_is_dropped_before_the_backend(lab1, api, start_agent):
    stale.test_invalid_state_tcp_is_dropped_before_the_backend(lab1, api, start_agent,
                                                               "nodeport")
