# A throwaway x509 PKI for the tests that speak TLS (nbd-tls, etcd-tls),
# sourced after tests/functions.sh.
#
#   pki_make DIR [IP...]   in DIR, named as qemu, libnbd and isocache-nbd
#                          look for them: ca-cert.pem (ca-key.pem), a server
#                          certificate for localhost, 127.0.0.1 and each IP
#                          (server-cert.pem, server-key.pem) and a client
#                          certificate (client-cert.pem, client-key.pem),
#                          all valid for two days
#   pki_client_anonymous DIR  a client certificate without a common name
#                          (anon-cert.pem, anon-key.pem): etcd 3.4 refuses a
#                          gateway request whose certificate names one once
#                          its users are on

pki_make() {
	local dir=$1 ip
	shift
	requires certtool
	mkdir -p "$dir"
	certtool --generate-privkey --outfile "$dir/ca-key.pem" 2>/dev/null
	printf 'cn = isocache test CA\nca\ncert_signing_key\nexpiration_days = 2\n' >"$dir/ca.info"
	certtool --generate-self-signed --load-privkey "$dir/ca-key.pem" --template "$dir/ca.info" \
		--outfile "$dir/ca-cert.pem" 2>/dev/null
	{
		printf 'cn = localhost\ndns_name = localhost\nip_address = 127.0.0.1\n'
		for ip in "$@"; do printf 'ip_address = %s\n' "$ip"; done
		# tls_www_client too: etcd's JSON gateway dials its own gRPC server with
		# the server certificate as the client's when --client-cert-auth is on.
		printf 'tls_www_server\ntls_www_client\nencryption_key\nsigning_key\nexpiration_days = 2\n'
	} >"$dir/server.info"
	_pki_cert "$dir" server
	printf 'cn = client\ntls_www_client\nencryption_key\nsigning_key\nexpiration_days = 2\n' \
		>"$dir/client.info"
	_pki_cert "$dir" client
}

pki_client_anonymous() {
	printf 'tls_www_client\nencryption_key\nsigning_key\nexpiration_days = 2\n' >"$1/anon.info"
	_pki_cert "$1" anon
}

# _pki_cert DIR NAME: NAME-key.pem and NAME-cert.pem from NAME.info, signed
# by DIR's CA.
_pki_cert() {
	certtool --generate-privkey --outfile "$1/$2-key.pem" 2>/dev/null
	certtool --generate-certificate --load-privkey "$1/$2-key.pem" \
		--load-ca-certificate "$1/ca-cert.pem" --load-ca-privkey "$1/ca-key.pem" \
		--template "$1/$2.info" --outfile "$1/$2-cert.pem" 2>/dev/null
}
