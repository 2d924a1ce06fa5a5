#!/bin/sh
# gen.sh makes the certificate fixtures of unusual shapes under fixtures/,
# with OpenSSL 3 only. Run it from this directory, then regenerate the
# expected values from the same openssl:
#
#   sh gen.sh && (cd .. && go test -run TestGolden -update)
#
# Keys are made fresh in a temporary directory and thrown away: the
# fixtures are public certificates, nothing here is secret.
set -eu
out=$(pwd)/fixtures
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"

# A config without default extensions: what a fixture carries is exactly
# what its command line adds.
cat > min.cnf <<'CNF'
oid_section = oids
[oids]
testAttribute = 1.2.3.4.5
[req]
distinguished_name = dn
prompt = no
utf8 = yes
string_mask = utf8only
[dn]
CN = unused
[v3]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
[allku]
keyUsage = digitalSignature, nonRepudiation, keyEncipherment, dataEncipherment, keyAgreement, keyCertSign, cRLSign, encipherOnly, decipherOnly
extendedKeyUsage = serverAuth, clientAuth, codeSigning, emailProtection, timeStamping, OCSPSigning, ipsecEndSystem, ipsecTunnel, ipsecUser, msSGC, nsSGC, msEFS, msSmartcardLogin, 1.3.6.1.4.1.311.10.3.12, 1.2.3.4.5.6, anyExtendedKeyUsage
[leaf]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth, 1.3.6.1.4.1.99999.1
[noku]
basicConstraints = critical, CA:TRUE, pathlen:0
[emptyeku]
keyUsage = encipherOnly
CNF

# The same with OpenSSL's old string choice: PrintableString where it can,
# T61String (8-bit) for Latin-1, BMPString (UCS-2) beyond.
sed 's/string_mask = utf8only/string_mask = default/' min.cnf > legacy.cnf

newkey() { # name algorithm [pkeyopt...]
	name=$1 alg=$2
	shift 2
	set -- -algorithm "$alg" "$@"
	openssl genpkey "$@" -out "$name.key" 2>/dev/null
}

selfsign() { # name key subject [req options...]
	name=$1 key=$2 subj=$3
	shift 3
	openssl req -x509 -config min.cnf -key "$key.key" -subj "$subj" -days 3650 "$@" -out "$out/$name.pem"
}

newkey rsa2048 RSA -pkeyopt rsa_keygen_bits:2048
newkey rsa512 RSA -pkeyopt rsa_keygen_bits:512
newkey rsae3 RSA -pkeyopt rsa_keygen_bits:1024 -pkeyopt rsa_keygen_pubexp:3
newkey rsapss RSA-PSS -pkeyopt rsa_keygen_bits:2048 -pkeyopt rsa_pss_keygen_md:sha256 -pkeyopt rsa_pss_keygen_mgf1_md:sha256 -pkeyopt rsa_pss_keygen_saltlen:32
newkey p224 EC -pkeyopt ec_paramgen_curve:P-224 -pkeyopt ec_param_enc:named_curve
newkey p256 EC -pkeyopt ec_paramgen_curve:P-256 -pkeyopt ec_param_enc:named_curve
newkey p384 EC -pkeyopt ec_paramgen_curve:P-384 -pkeyopt ec_param_enc:named_curve
newkey p521 EC -pkeyopt ec_paramgen_curve:P-521 -pkeyopt ec_param_enc:named_curve
newkey bp256 EC -pkeyopt ec_paramgen_curve:brainpoolP256r1 -pkeyopt ec_param_enc:named_curve
newkey p256explicit EC -pkeyopt ec_paramgen_curve:P-256 -pkeyopt ec_param_enc:explicit
newkey bp384 EC -pkeyopt ec_paramgen_curve:brainpoolP384r1 -pkeyopt ec_param_enc:named_curve
newkey bp320t EC -pkeyopt ec_paramgen_curve:brainpoolP320t1 -pkeyopt ec_param_enc:named_curve
newkey k256 EC -pkeyopt ec_paramgen_curve:secp256k1 -pkeyopt ec_param_enc:named_curve
newkey ed25519 ED25519
newkey ed448 ED448
openssl genpkey -genparam -algorithm DSA -pkeyopt dsa_paramgen_bits:2048 -pkeyopt dsa_paramgen_q_bits:256 -out dsa2048.param 2>/dev/null
openssl genpkey -paramfile dsa2048.param -out dsa2048.key
openssl genpkey -genparam -algorithm DSA -pkeyopt dsa_paramgen_bits:1024 -pkeyopt dsa_paramgen_q_bits:160 -out dsa1024.param 2>/dev/null
openssl genpkey -paramfile dsa1024.param -out dsa1024.key

# Signature algorithms and key types.
selfsign sha256rsa-v3-ca rsa2048 "/C=US/ST=Washington/L=Redmond/O=Contoso Ltd/OU=PKI/CN=Contoso Root" -extensions v3
selfsign sha1rsa rsa2048 "/CN=SHA-1 RSA" -sha1 -extensions v3
selfsign md5rsa rsa2048 "/CN=MD5 RSA" -md5 -extensions v3
selfsign sha384rsa rsa2048 "/CN=SHA-384 RSA" -sha384
selfsign sha512rsa rsa2048 "/CN=SHA-512 RSA" -sha512
selfsign rsa512-small rsa512 "/CN=RSA 512" -extensions v3
selfsign rsa-e3 rsae3 "/CN=RSA e=3" -extensions v3
selfsign pss-sigopt rsa2048 "/CN=PSS from an rsaEncryption key" -sha256 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:32 -extensions v3
selfsign pss-sha384-salt48 rsa2048 "/CN=PSS SHA-384" -sha384 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:48 -sigopt rsa_mgf1_md:sha384
selfsign pss-default-sha1 rsa2048 "/CN=PSS defaults" -sha1 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:20
selfsign pss-key rsapss "/CN=RSA-PSS key" -extensions v3
selfsign ecdsa-p224 p224 "/CN=P-224" -sha256
selfsign ecdsa-p256-sha1 p256 "/CN=P-256 SHA-1" -sha1
selfsign ecdsa-p384 p384 "/CN=P-384" -sha384 -extensions v3
selfsign ecdsa-p521 p521 "/CN=P-521" -sha512 -extensions v3
selfsign ecdsa-brainpool bp256 "/CN=brainpoolP256r1" -sha256
selfsign ecdsa-explicit-p256 p256explicit "/CN=Explicit P-256 parameters" -sha256
selfsign ecdsa-brainpool384 bp384 "/CN=brainpoolP384r1" -sha384 -extensions v3
selfsign ecdsa-brainpool320t bp320t "/CN=brainpoolP320t1" -sha512
selfsign ecdsa-secp256k1 k256 "/CN=secp256k1" -sha256
selfsign ed25519 ed25519 "/CN=Ed25519" -extensions v3
selfsign ed448 ed448 "/CN=Ed448"
selfsign dsa2048-sha256 dsa2048 "/CN=DSA 2048" -sha256
selfsign dsa1024-sha1 dsa1024 "/CN=DSA 1024" -sha1

# Serial numbers.
selfsign serial-negative rsa2048 "/CN=Negative serial" -set_serial -1234567
selfsign serial-highbit rsa2048 "/CN=High bit serial" -set_serial 0x80aa55
selfsign serial-zero rsa2048 "/CN=Zero serial" -set_serial 0
selfsign serial-long rsa2048 "/CN=Long serial" -set_serial 0x00ff00112233445566778899aabbccddeeff0011

# Names.
selfsign dn-multivalued rsa2048 "/DC=com/DC=contoso/O=Contoso/OU=Sales+OU=Marketing/CN=Jane Doe+UID=jdoe" -multivalue-rdn
selfsign dn-quoted rsa2048 "/CN=Doe, Jane/O=Say \"hi\"/OU= leading space/OU=trailing space /L=a=b/ST=x\\+y/street=1 Main St; Suite 2/title=#1 <boss>" -extensions v3
selfsign dn-email rsa2048 "/CN=Mail User/emailAddress=user@example.com/O=Example/OU=One/OU=Two/OU=Three"
selfsign dn-unicode rsa2048 "/CN=Zürich Straße 東京/O=Ünïcødé/C=CH" -utf8
openssl req -x509 -config legacy.cnf -key rsa2048.key -utf8 -subj "/CN=Zürich Bahnhofstraße/O=東京 Tokyo/OU=plain ascii/C=CH" -days 3650 -out "$out/dn-t61-bmp.pem"
selfsign dn-attributes rsa2048 "/serialNumber=12345/businessCategory=Private Organization/jurisdictionC=US/GN=Jane/SN=Doe/initials=JD/postalCode=98052/description=A test/testAttribute=unknown attribute/street=Main/CN=Attributes"
selfsign dn-empty-subject rsa2048 "/" -extensions v3 2>/dev/null || true

# Extensions.
selfsign ku-all rsa2048 "/CN=All key usages" -extensions allku
selfsign ku-none rsa2048 "/CN=No key usage" -extensions noku
selfsign ku-encipher-only rsa2048 "/CN=Encipher only" -extensions emptyeku
selfsign v1-no-extensions rsa2048 "/CN=Version 1/O=Old"
selfsign generalized-time rsa2048 "/CN=After 2050" -days 40000

# A leaf whose issuer name equals its subject but whose signer is another
# key: not self-signed.
selfsign same-name-ca p256 "/CN=Same Name" -extensions v3
openssl req -new -config min.cnf -key rsa2048.key -subj "/CN=Same Name" -out same.csr
openssl x509 -req -in same.csr -CA "$out/same-name-ca.pem" -CAkey p256.key -set_serial 7 -days 365 -sha256 \
	-extfile min.cnf -extensions leaf -out "$out/same-name-leaf.pem" 2>/dev/null
# An ordinary leaf under that CA's key, with another issuer name.
selfsign leaf-issuer p384 "/C=DE/O=Issuer GmbH/CN=Issuing CA" -extensions v3
openssl req -new -config min.cnf -key p256.key -subj "/C=DE/O=Leaf GmbH/CN=www.example.de" -out leaf.csr
openssl x509 -req -in leaf.csr -CA "$out/leaf-issuer.pem" -CAkey p384.key -set_serial 0x0102 -days 365 -sha384 \
	-extfile min.cnf -extensions leaf -out "$out/leaf-ecdsa.pem" 2>/dev/null
