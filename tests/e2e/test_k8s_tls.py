"""TLS to the apiserver is verified unless --k8s-insecure-skip-tls-verify says otherwise,
and saying so is logged."""

import signal

import k8s
from harness import Agent
from netlab import wait_for


def test_unverifiable_apiserver_is_refused_until_insecure_is_asked_for(lab, apiserver):
    agent = Agent(lab, apiserver)
    # A kubeconfig without the apiserver's CA: its certificate cannot be verified.
    agent.kubeconfig = k8s.write_kubeconfig(f"{lab.run_dir}/kubeconfig-no-ca", apiserver.url,
                                            apiserver.token)
    try:
        agent.start(wait=False)
        wait_for(lambda: "certificate" in agent.log_tail(40).lower(), timeout=15,
                 what="a certificate error in the log")
        k = agent.status()["kubernetes"]
        assert not k["connected"] and not any(w["synced"] for w in k["watches"]), k
        assert any("certificate" in w["last_error"].lower() for w in k["watches"]), k
        assert "TLS verification disabled" not in agent.log_tail(200)
        agent.stop(signal.SIGTERM)

        agent.extra = ["--k8s-insecure-skip-tls-verify"]
        agent.start()                      # waits until every watch has synced
        assert "k8s TLS verification disabled" in agent.log_tail(200)
    finally:
        if agent.alive():
            agent.stop(signal.SIGKILL)
