package secret

import (
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"wgbot"
)

// OpenPeer unseals a peer's private and preshared keys, for its client
// config. A peer imported without its private key (empty sealed bytes)
// gives wgbot.ErrNoClientKey: there is no config to show.
func (k *Keyring) OpenPeer(sec wgbot.PeerSecrets) (priv, psk wgtypes.Key, err error) {
	if len(sec.PrivateKeySealed) == 0 {
		return priv, psk, wgbot.ErrNoClientKey
	}
	rawPriv, err := k.Open(sec.PrivateKeySealed, sec.KeyID, []byte(sec.PublicKey))
	if err != nil {
		return priv, psk, err
	}
	if psk, err = k.OpenPresharedKey(sec); err != nil {
		return priv, psk, err
	}
	copy(priv[:], rawPriv)
	return priv, psk, nil
}

// OpenPresharedKey unseals only a peer's preshared key: all a WireGuard
// host needs of it. An imported peer that had none has empty sealed bytes
// and gets the zero key, which WireGuard reads as "no preshared key".
func (k *Keyring) OpenPresharedKey(sec wgbot.PeerSecrets) (wgtypes.Key, error) {
	var psk wgtypes.Key
	if len(sec.PresharedSealed) == 0 {
		return psk, nil
	}
	raw, err := k.Open(sec.PresharedSealed, sec.KeyID, []byte(sec.PublicKey))
	copy(psk[:], raw)
	return psk, err
}
