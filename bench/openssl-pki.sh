#!/usr/bin/env bash
# Baseline for bench/init.ts: the same certificate set kubepki init makes (3 CAs, 7 kubeadm leaves,
# the kubelet serving certificate, 5 kubeconfig client certificates, the service-account key),
# made the way such shell scripts are usually written: one openssl call after another.
# Usage: openssl-pki.sh ECDSA-P256|RSA-2048 DIR
set -euo pipefail
alg=$1
dir=$2
mkdir -p "$dir/etcd"
cd "$dir"

genkey() {
  if [ "$alg" = "RSA-2048" ]; then
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1" 2>/dev/null
  else
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"
  fi
  chmod 600 "$1"
}

ca() { # base cn
  genkey "$1.key"
  openssl req -x509 -new -key "$1.key" -subj "/CN=$2" -days 3650 -out "$1.crt" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,digitalSignature,keyEncipherment,keyCertSign,cRLSign" \
    -addext "subjectAltName=DNS:$2"
}

leaf() { # base ca subject eku [san]
  genkey "$1.key"
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$4"
    echo "authorityKeyIdentifier=keyid"
    [ -n "${5:-}" ] && echo "subjectAltName=$5"
  } >"$1.ext"
  openssl req -new -key "$1.key" -subj "$3" -out "$1.csr"
  openssl x509 -req -in "$1.csr" -CA "$2.crt" -CAkey "$2.key" -CAcreateserial -days 365 \
    -extfile "$1.ext" -out "$1.crt" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}

kubeconfig() { # name user org
  local subj="/CN=$2"
  [ -n "$3" ] && subj="/O=$3/CN=$2"
  leaf "$1" ca "$subj" clientAuth
  cat >"$1.conf" <<YAML
apiVersion: v1
kind: Config
clusters:
- cluster:
    certificate-authority-data: $(base64 -w0 ca.crt)
    server: https://10.0.0.10:6443
  name: kubernetes
users:
- name: $2
  user:
    client-certificate-data: $(base64 -w0 "$1.crt")
    client-key-data: $(base64 -w0 "$1.key")
YAML
  chmod 600 "$1.conf"
  rm -f "$1.crt" "$1.key"
}

ca ca kubernetes
ca front-proxy-ca front-proxy-ca
ca etcd/ca etcd-ca
api_san="DNS:cp1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:10.96.0.1,IP:10.0.0.10"
etcd_san="DNS:cp1,DNS:localhost,IP:10.0.0.10,IP:127.0.0.1,IP:::1"
leaf apiserver ca "/CN=kube-apiserver" serverAuth "$api_san"
leaf apiserver-kubelet-client ca "/O=kubeadm:cluster-admins/CN=kube-apiserver-kubelet-client" clientAuth
leaf front-proxy-client front-proxy-ca "/CN=front-proxy-client" clientAuth
leaf etcd/server etcd/ca "/CN=cp1" serverAuth,clientAuth "$etcd_san"
leaf etcd/peer etcd/ca "/CN=cp1" serverAuth,clientAuth "$etcd_san"
leaf etcd/healthcheck-client etcd/ca "/CN=kube-etcd-healthcheck-client" clientAuth
leaf apiserver-etcd-client etcd/ca "/CN=kube-apiserver-etcd-client" clientAuth
leaf kubelet ca "/O=system:nodes/CN=system:node:cp1" serverAuth "DNS:cp1,IP:10.0.0.10"
kubeconfig admin kubernetes-admin kubeadm:cluster-admins
kubeconfig super-admin kubernetes-super-admin system:masters
kubeconfig kubelet system:node:cp1 system:nodes
kubeconfig controller-manager system:kube-controller-manager ""
kubeconfig scheduler system:kube-scheduler ""
genkey sa.key
openssl pkey -in sa.key -pubout -out sa.pub
