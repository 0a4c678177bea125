// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The L4 half of a CiliumNetworkPolicy rule (pkg/policy/api: PortRule,
 * PortProtocol, ICMPRule): toPorts[].ports[] and icmps[].fields[].
 *
 *   port       "80", "0" (every port), or a port name ("http", lowercased);
 *              endPort makes it a range
 *   protocol   TCP, UDP, SCTP or ANY (the default: TCP, UDP and SCTP), any
 *              case; ICMP, ICMPv6, VRRP, IGMP are kept and flagged
 *   rules, terminatingTLS, originatingTLS, serverNames, listener: L7, which
 *              Axon does not enforce: the ports are kept, the entry flagged
 *   icmps      type (0-255 or Cilium's name for it), family IPv4 (default)
 *              or IPv6; not with toPorts in the same rule (Cilium refuses it)
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "k8s/policy_priv.h"

static const struct {
	const char *name;
	__u8 proto;
	bool supported;
} protos[] = {
    {"ANY", 0, true},
    {"TCP", IPPROTO_TCP, true},
    {"UDP", IPPROTO_UDP, true},
    {"SCTP", IPPROTO_SCTP, false},
    {"ICMP", IPPROTO_ICMP, false},
    {"ICMPV6", IPPROTO_ICMPV6, false},
    {"VRRP", 112, false},
    {"IGMP", IPPROTO_IGMP, false},
};

/* Cilium's icmpIpv4TypeNameToCode and icmpIpv6TypeNameToCode. */
static const struct {
	const char *name;
	__u8 type;
} icmp4_names[] =
    {
	{"EchoReply", 0},
	{"DestinationUnreachable", 3},
	{"Redirect", 5},
	{"Echo", 8},
	{"EchoRequest", 8},
	{"RouterAdvertisement", 9},
	{"RouterSelection", 10},
	{"TimeExceeded", 11},
	{"ParameterProblem", 12},
	{"Timestamp", 13},
	{"TimestampReply", 14},
	{"Photuris", 40},
	{"ExtendedEchoRequest", 42},
	{"ExtendedEchoReply", 43},
},
  icmp6_names[] = {
      {"DestinationUnreachable", 1},
      {"PacketTooBig", 2},
      {"TimeExceeded", 3},
      {"ParameterProblem", 4},
      {"EchoRequest", 128},
      {"EchoReply", 129},
      {"MulticastListenerQuery", 130},
      {"MulticastListenerReport", 131},
      {"MulticastListenerDone", 132},
      {"RouterSolicitation", 133},
      {"RouterAdvertisement", 134},
      {"NeighborSolicitation", 135},
      {"NeighborAdvertisement", 136},
      {"RedirectMessage", 137},
      {"RouterRenumbering", 138},
      {"ICMPNodeInformationQuery", 139},
      {"ICMPNodeInformationResponse", 140},
      {"InverseNeighborDiscoverySolicitation", 141},
      {"InverseNeighborDiscoveryAdvertisement", 142},
      {"HomeAgentAddressDiscoveryRequest", 144},
      {"HomeAgentAddressDiscoveryReply", 145},
      {"MobilePrefixSolicitation", 146},
      {"MobilePrefixAdvertisement", 147},
      {"DuplicateAddressRequestCodeSuffix", 157},
      {"DuplicateAddressConfirmationCodeSuffix", 158},
      {"ExtendedEchoRequest", 160},
      {"ExtendedEchoReply", 161},
};

#define N(a) (sizeof(a) / sizeof(a[0]))

static int parse_protocol(const cJSON *pp, const char *path, struct policy_port *out,
			  __u32 *unsupported, char *err, size_t errlen)
{
	const char *s;
	char shown[64];
	int ret;

	ret = k8s_json_string_ref(pp, path, "protocol", false, &s, err, errlen);
	if (ret)
		return ret;
	if (!s || !*s)
		s = "ANY";
	for (size_t i = 0; i < N(protos); i++) {
		if (strcasecmp(s, protos[i].name))
			continue;
		out->proto = protos[i].proto;
		if (out->proto == IPPROTO_SCTP)
			*unsupported |= POLICY_UNSUP_SCTP;
		else if (!protos[i].supported)
			*unsupported |= POLICY_UNSUP_PROTOCOL;
		return 0;
	}
	k8s_json_quote(shown, sizeof(shown), s);
	return k8s_json_fail(err, errlen, path, "protocol",
			     "unknown protocol \"%s\" (TCP, UDP, SCTP, ANY)", shown);
}

/* "80", 80, "0", "http". */
static int parse_port_value(const cJSON *pp, const char *path, struct policy_arena *a,
			    struct policy_port *out, char *err, size_t errlen)
{
	const cJSON *v = k8s_json_get(pp, "port");
	char shown[64], *name;
	long long n;
	size_t len;
	int ret;

	out->name = "";
	if (!v)
		return k8s_json_fail(err, errlen, path, "port", "required field is missing");
	if (cJSON_IsNumber(v)) {
		ret = k8s_json_int(pp, path, "port", true, 0, 65535, &n, err, errlen);
		if (ret)
			return ret;
		out->port = (__u16)n;
		return 0;
	}
	if (!cJSON_IsString(v) || !v->valuestring)
		return k8s_json_fail(err, errlen, path, "port", "expected a string");
	len = strlen(v->valuestring);
	k8s_json_quote(shown, sizeof(shown), v->valuestring);
	if (len && len <= 5 && strspn(v->valuestring, "0123456789") == len) {
		n = 0;
		for (size_t i = 0; i < len; i++)
			n = n * 10 + (v->valuestring[i] - '0');
		if (n > 65535)
			return k8s_json_fail(err, errlen, path, "port", "%lld is not in 0..65535",
					     n);
		out->port = (__u16)n;
		return 0;
	}
	if (!k8s_port_name_valid(v->valuestring, true))
		return k8s_json_fail(err, errlen, path, "port",
				     "\"%s\" is neither a port number nor a port name", shown);
	/* Cilium compares names case-insensitively: it lowercases them. */
	name = (char *)policy_arena_strdup(a, v->valuestring);
	if (!name)
		return -ENOMEM;
	for (char *c = name; *c; c++)
		if (*c >= 'A' && *c <= 'Z')
			*c = (char)(*c - 'A' + 'a');
	out->name = name;
	return 0;
}

static int parse_port(const cJSON *pp, const char *path, struct policy_arena *a,
		      struct policy_port *out, __u32 *unsupported, char *err, size_t errlen)
{
	long long end = 0;
	int ret;

	if (!cJSON_IsObject(pp))
		return k8s_json_fail(err, errlen, path, NULL, "expected an object");
	ret = parse_port_value(pp, path, a, out, err, errlen);
	if (ret)
		return ret;
	ret = parse_protocol(pp, path, out, unsupported, err, errlen);
	if (ret)
		return ret;
	ret = k8s_json_int(pp, path, "endPort", false, 0, 65535, &end, err, errlen);
	if (ret || !end)
		return ret;
	if (!out->port)
		return k8s_json_fail(err, errlen, path, "endPort",
				     "may only be set with a port number above 0");
	if (end < out->port)
		return k8s_json_fail(err, errlen, path, "endPort", "%lld is below port %u", end,
				     out->port);
	out->end_port = (__u16)end;
	return 0;
}

/* Anything in a PortRule that asks for the L7 proxy. */
static bool wants_l7(const cJSON *pr)
{
	static const char *const keys[] = {"rules", "terminatingTLS", "originatingTLS",
					   "serverNames", "listener"};

	for (size_t i = 0; i < N(keys); i++) {
		const cJSON *v = k8s_json_get(pr, keys[i]);

		if (v && !((cJSON_IsObject(v) || cJSON_IsArray(v)) && !v->child))
			return true;
	}
	return false;
}

/*
 * rules: an array of objects, each with an optional array `key` of at most max
 * items (toPorts[].ports, icmps[].fields). Checks them all, then allocates
 * one array of size-byte elements for every rule's items, in order, so the
 * caller fills it in a second pass (nested_items()).
 */
static int nested_alloc(const cJSON *rules, const char *path, const char *key, size_t max,
			struct policy_arena *a, size_t size, void **out, size_t *total, char *err,
			size_t errlen)
{
	char rp[K8S_PATH_MAX];
	const cJSON *r, *items;
	size_t n, i = 0;
	int ret;

	*total = 0;
	cJSON_ArrayForEach(r, rules)
	{
		k8s_json_index(rp, sizeof(rp), path, i++);
		if (!cJSON_IsObject(r))
			return k8s_json_fail(err, errlen, rp, NULL, "expected an object");
		ret = k8s_json_array(r, rp, key, false, max, &items, &n, err, errlen);
		if (ret)
			return ret;
		*total += n;
	}
	*out = policy_arena_alloc(a, *total, size);
	return *out ? 0 : -ENOMEM;
}

/* Rule i's `key` array (checked by nested_alloc()), its path into rp and the
 * array's into lp. */
static const cJSON *nested_items(const cJSON *rule, const char *path, size_t i, const char *key,
				 size_t max, char *rp, char *lp)
{
	const cJSON *items = NULL;
	size_t n;

	k8s_json_index(rp, K8S_PATH_MAX, path, i);
	k8s_json_array(rule, rp, key, false, max, &items, &n, NULL, 0);
	k8s_json_path(lp, K8S_PATH_MAX, rp, key);
	return items;
}

static int parse_to_ports(const cJSON *arr, const char *path, bool deny, struct policy_arena *a,
			  struct policy_rule_entry *e, char *err, size_t errlen)
{
	char rp[K8S_PATH_MAX], lp[K8S_PATH_MAX], ip[K8S_PATH_MAX];
	const cJSON *pr, *ports, *pp;
	struct policy_port *out;
	size_t total, i = 0, k = 0;
	int ret;

	ret = nested_alloc(arr, path, "ports", K8S_MAX_CNP_PORTS, a, sizeof(*out), (void **)&out,
			   &total, err, errlen);
	if (ret)
		return ret;
	cJSON_ArrayForEach(pr, arr)
	{
		size_t j = 0;

		ports = nested_items(pr, path, i++, "ports", K8S_MAX_CNP_PORTS, rp, lp);
		/* A PortDenyRule has ports only: anything else is not Cilium's. */
		if (!deny && wants_l7(pr))
			e->unsupported |= POLICY_UNSUP_L7;
		cJSON_ArrayForEach(pp, ports)
		{
			k8s_json_index(ip, sizeof(ip), lp, j++);
			ret = parse_port(pp, ip, a, &out[k++], &e->unsupported, err, errlen);
			if (ret)
				return ret;
		}
	}
	e->ports = out;
	e->n_ports = total;
	return 0;
}

static int parse_icmp_type(const cJSON *f, const char *path, __u8 family, __u8 *type, char *err,
			   size_t errlen)
{
	const cJSON *t = k8s_json_get(f, "type");
	char shown[64];
	long long v;
	int ret;

	if (!t || !cJSON_IsString(t)) {
		ret = k8s_json_int(f, path, "type", true, 0, 255, &v, err, errlen);
		if (ret)
			return ret;
		*type = (__u8)v;
		return 0;
	}
	if (family == AF_INET) {
		for (size_t i = 0; i < N(icmp4_names); i++)
			if (!strcmp(t->valuestring, icmp4_names[i].name)) {
				*type = icmp4_names[i].type;
				return 0;
			}
	} else {
		for (size_t i = 0; i < N(icmp6_names); i++)
			if (!strcmp(t->valuestring, icmp6_names[i].name)) {
				*type = icmp6_names[i].type;
				return 0;
			}
	}
	k8s_json_quote(shown, sizeof(shown), t->valuestring);
	return k8s_json_fail(err, errlen, path, "type", "ICMP type \"%s\" not found in %s", shown,
			     family == AF_INET ? "IPv4" : "IPv6");
}

static int parse_icmps(const cJSON *arr, const char *path, struct policy_arena *a,
		       struct policy_rule_entry *e, char *err, size_t errlen)
{
	char rp[K8S_PATH_MAX], lp[K8S_PATH_MAX], ip[K8S_PATH_MAX], shown[64];
	const cJSON *r, *fields, *f;
	struct policy_icmp *out;
	size_t total, i = 0, k = 0;
	int ret;

	ret = nested_alloc(arr, path, "fields", K8S_MAX_CNP_ICMP, a, sizeof(*out), (void **)&out,
			   &total, err, errlen);
	if (ret)
		return ret;
	cJSON_ArrayForEach(r, arr)
	{
		size_t j = 0;

		fields = nested_items(r, path, i++, "fields", K8S_MAX_CNP_ICMP, rp, lp);
		cJSON_ArrayForEach(f, fields)
		{
			struct policy_icmp *o = &out[k++];
			const char *fam;

			k8s_json_index(ip, sizeof(ip), lp, j++);
			if (!cJSON_IsObject(f))
				return k8s_json_fail(err, errlen, ip, NULL, "expected an object");
			ret = k8s_json_string_ref(f, ip, "family", false, &fam, err, errlen);
			if (ret)
				return ret;
			if (!fam || !*fam || !strcmp(fam, "IPv4")) {
				o->family = AF_INET;
			} else if (!strcmp(fam, "IPv6")) {
				o->family = AF_INET6;
			} else {
				k8s_json_quote(shown, sizeof(shown), fam);
				return k8s_json_fail(err, errlen, ip, "family",
						     "wrong family \"%s\" (IPv4, IPv6)", shown);
			}
			ret = parse_icmp_type(f, ip, o->family, &o->type, err, errlen);
			if (ret)
				return ret;
		}
	}
	e->icmps = out;
	e->n_icmps = total;
	return 0;
}

int k8s_cnp_l4(const cJSON *obj, const char *path, bool deny, struct policy_arena *a,
	       struct policy_rule_entry *e, bool *given, char *err, size_t errlen)
{
	char p[K8S_PATH_MAX];
	const cJSON *ports, *icmps;
	size_t n_ports, n_icmps;
	int ret;

	ret = k8s_json_array(obj, path, "toPorts", false, K8S_MAX_POLICY_PORTS, &ports, &n_ports,
			     err, errlen);
	if (ret)
		return ret;
	ret = k8s_json_array(obj, path, "icmps", false, K8S_MAX_POLICY_PORTS, &icmps, &n_icmps, err,
			     errlen);
	if (ret)
		return ret;
	if (n_ports && n_icmps)
		return k8s_json_fail(err, errlen, path, "icmps",
				     "may only be present without toPorts (define a separate "
				     "rule for toPorts)");
	*given = n_ports || n_icmps;
	k8s_json_path(p, sizeof(p), path, "toPorts");
	if (n_ports)
		return parse_to_ports(ports, p, deny, a, e, err, errlen);
	k8s_json_path(p, sizeof(p), path, "icmps");
	if (n_icmps)
		return parse_icmps(icmps, p, a, e, err, errlen);
	return 0;
}
