#!/bin/sh
# gen.sh makes the certificate files of testdata/formats: one small chain
# (RSA root, ECDSA intermediate, Ed25519 leaf) in every format that scan
# reads. Run it from scan/testdata with openssl 3 and a JDK's keytool; the
# output is committed, so tests need neither to build it (the proof test
# still asks openssl and keytool what these files hold).
set -eu
out=formats
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rm -f "$out"/*
cd "$work"

openssl req -x509 -newkey rsa:2048 -nodes -keyout root.key -out root.pem -days 7300 \
	-subj "/C=FR/O=certinv test/OU=scan fixtures/CN=certinv Test Root" \
	-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout inter.key -out inter.csr \
	-subj "/C=FR/O=certinv test/CN=certinv Test Intermediate" 2>/dev/null
printf 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign,digitalSignature\n' >inter.ext
openssl x509 -req -in inter.csr -CA root.pem -CAkey root.key -CAcreateserial -days 3650 -sha384 -extfile inter.ext -out inter.pem 2>/dev/null
openssl req -newkey ed25519 -nodes -keyout leaf.key -out leaf.csr \
	-subj "/C=FR/L=Paris/O=certinv test/CN=leaf.certinv.test" 2>/dev/null
printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=DNS:leaf.certinv.test\n' >leaf.ext
openssl x509 -req -in leaf.csr -CA inter.pem -CAkey inter.key -CAcreateserial -days 825 -extfile leaf.ext -out leaf.pem 2>/dev/null
cat leaf.pem inter.pem >chain.pem
openssl req -x509 -newkey rsa:3072 -nodes -keyout other.key -out other.pem -days 3650 -sha512 \
	-subj "/CN=certinv Other Self-Signed/emailAddress=ops@certinv.test" 2>/dev/null

# PEM: a bundle with comments between blocks, as distributions write them.
{ echo "# certinv Test Root"; cat root.pem; echo; echo "# certinv Test Intermediate"; cat inter.pem; cat other.pem; } >"$OLDPWD/$out/bundle.pem"
# OpenSSL's trusted certificate form.
openssl x509 -in other.pem -addtrust serverAuth -trustout -out "$OLDPWD/$out/trusted.pem"
# DER.
openssl x509 -in leaf.pem -outform DER -out "$OLDPWD/$out/leaf.cer"
# PKCS#7, DER and PEM.
openssl crl2pkcs7 -nocrl -certfile chain.pem -certfile root.pem -outform DER -out "$OLDPWD/$out/chain.p7b"
openssl crl2pkcs7 -nocrl -certfile chain.pem -out "$OLDPWD/$out/chain.p7c"
# PKCS#12: empty password (AES), a password (AES), 3DES, RC2 (legacy),
# certificates in clear.
openssl pkcs12 -export -inkey leaf.key -in leaf.pem -certfile inter.pem -name leaf -passout pass: -out "$OLDPWD/$out/nopass.pfx"
openssl pkcs12 -export -inkey leaf.key -in leaf.pem -certfile inter.pem -name leaf -passout pass:secret -out "$OLDPWD/$out/secret.p12"
openssl pkcs12 -export -inkey inter.key -in inter.pem -certfile root.pem -name intermediate -certpbe PBE-SHA1-3DES -keypbe PBE-SHA1-3DES -macalg sha1 -passout pass:secret -out "$OLDPWD/$out/des.pfx"
openssl pkcs12 -export -legacy -inkey inter.key -in inter.pem -certfile root.pem -name intermediate -passout pass:secret -out "$OLDPWD/$out/legacy.pfx"
openssl pkcs12 -export -inkey leaf.key -in leaf.pem -name leaf -certpbe NONE -keypbe NONE -nomac -passout pass: -out "$OLDPWD/$out/clear.p12"
# Java keystores: trusted entries and a key entry with its chain.
openssl pkcs12 -export -inkey leaf.key -in leaf.pem -certfile inter.pem -name server -passout pass:changeit -out server.p12
for type in JKS JCEKS PKCS12; do
	ext=$(echo "$type" | tr 'A-Z' 'a-z')
	[ "$type" = PKCS12 ] && ext=truststore.p12
	ks="$OLDPWD/$out/store.$ext"
	keytool -importcert -noprompt -alias "test root" -file root.pem -keystore "$ks" -storetype "$type" -storepass changeit >/dev/null 2>&1
	keytool -importcert -noprompt -alias other -file other.pem -keystore "$ks" -storetype "$type" -storepass changeit >/dev/null 2>&1
	if [ "$type" != PKCS12 ]; then
		# JDK keytool cannot import an Ed25519 key into JKS; a JCEKS secret
		# key entry sits between the certificates.
		[ "$type" = JCEKS ] && keytool -genseckey -alias aes -keyalg AES -keysize 128 -keystore "$ks" -storetype JCEKS -storepass changeit -keypass changeit >/dev/null 2>&1
		keytool -importcert -noprompt -alias intermediate -file inter.pem -keystore "$ks" -storetype "$type" -storepass changeit >/dev/null 2>&1
	else
		keytool -importkeystore -noprompt -srckeystore server.p12 -srcstoretype PKCS12 -srcstorepass changeit \
			-destkeystore "$ks" -deststoretype PKCS12 -deststorepass changeit >/dev/null 2>&1
	fi
done
# Not a certificate: must yield nothing and no warning.
printf 'server {\n  listen 443 ssl;\n}\n' >"$OLDPWD/$out/nginx.conf"
