package telegram

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// msg names one user-facing text. Every text the bot sends comes from the
// catalogue by its msg; handlers hold none, so a translation is complete
// when the catalogue is (catalogue_test.go checks both languages).
type msg string

// The languages the bot speaks; the first is the fallback.
const (
	langEN = "en"
	langRU = "ru"
)

// languages lists the supported languages in the order /lang offers them.
func languages() []string { return []string{langEN, langRU} }

// normalizeLang maps a Telegram language_code (or a stored choice) to a
// supported language: Russian for ru*, English otherwise.
func normalizeLang(code string) string {
	if strings.HasPrefix(strings.ToLower(strings.TrimSpace(code)), langRU) {
		return langRU
	}
	return langEN
}

const (
	// Menus and navigation.
	mWelcome         msg = "welcome"
	mWelcomeLive     msg = "welcome_live"
	mWelcomeEnded    msg = "welcome_ended"
	mWelcomeEndedNew msg = "welcome_ended_new"
	mBtnRenew        msg = "btn_renew"
	mDateIn          msg = "date_in"
	mDateSoon        msg = "date_soon"
	mMenu            msg = "menu"
	mBtnTrial        msg = "btn_trial"
	mBtnBuy          msg = "btn_buy"
	mBtnSub          msg = "btn_subscription"
	mBtnHelp         msg = "btn_help"
	mBtnLanguage     msg = "btn_language"
	mBtnBack         msg = "btn_back"
	mHelp            msg = "help"
	mPaySupport      msg = "pay_support"
	mSupportDefault  msg = "support_default"
	mBtnSupport      msg = "btn_support"
	mChooseLanguage  msg = "choose_language"
	mLanguageName    msg = "language_name"
	mLanguageSet     msg = "language_set"
	mOutdated        msg = "outdated_button"
	mTooLong         msg = "too_long"
	mUnknownCommand  msg = "unknown_command"
	mBusy            msg = "busy"
	mSlowDown        msg = "slow_down"
	mSlowDownButton  msg = "slow_down_button"
	mCmdStart        msg = "cmd_start"
	mCmdHelp         msg = "cmd_help"
	mCmdLang         msg = "cmd_lang"
	mCmdPaySupport   msg = "cmd_paysupport"

	// "n days" and "up to n devices", by plural form.
	mDaysOne         msg = "days_one"
	mDaysFew         msg = "days_few"
	mDaysMany        msg = "days_many"
	mUpToDevicesOne  msg = "up_to_devices_one"
	mUpToDevicesFew  msg = "up_to_devices_few"
	mUpToDevicesMany msg = "up_to_devices_many"

	// Trial and config delivery.
	mTrialIssued   msg = "trial_issued"
	mConfigCaption msg = "config_caption"
	mQRCaption     msg = "qr_caption"
	mInstallSteps  msg = "install_steps"
	mApplyPending  msg = "apply_pending"

	// Buying.
	mPlans              msg = "plans"
	mPlanLine           msg = "plan_line"
	mPlanButton         msg = "plan_button"
	mChooseMethod       msg = "choose_method"
	mMethodStars        msg = "method_stars"
	mMethodButton       msg = "method_button"
	mInvoiceTitle       msg = "invoice_title"
	mInvoiceDescription msg = "invoice_description"
	mPayLink            msg = "pay_link"
	mPayLinkMethod      msg = "pay_link_method"
	mPayStarts          msg = "pay_starts"
	mPayExtends         msg = "pay_extends"
	mBtnPay             msg = "btn_pay"
	mPaidNew            msg = "paid_new"
	mPaidExtended       msg = "paid_extended"
	mPaymentProblem     msg = "payment_problem"
	mCheckoutCanceled   msg = "checkout_canceled"
	mBtnTryAgain        msg = "btn_try_again"
	mInvoiceClosed      msg = "invoice_closed"
	mInvoicePaid        msg = "invoice_paid"
	mRefundedUntil      msg = "refunded_until"
	mRefundedEnded      msg = "refunded_ended"
	mGranted            msg = "granted"

	// My subscription and devices.
	mNoSubscription    msg = "no_subscription"
	mSubStatus         msg = "sub_status"
	mSubPlan           msg = "sub_plan"
	mValidUntil        msg = "valid_until"
	mEndedOn           msg = "ended_on"
	mSubDevices        msg = "sub_devices"
	mStatusActive      msg = "status_active"
	mStatusExpired     msg = "status_expired"
	mStatusRevoked     msg = "status_revoked"
	mPlanTrial         msg = "plan_trial"
	mPlanGift          msg = "plan_gift"
	mPlanRetired       msg = "plan_retired"
	mDeviceLine        msg = "device_line"
	mDeviceOff         msg = "device_off"
	mBtnDeviceConfig   msg = "btn_device_config"
	mBtnDeviceRemove   msg = "btn_device_remove"
	mBtnAddDevice      msg = "btn_add_device"
	mBtnExtend         msg = "btn_extend"
	mConfirmRemove     msg = "confirm_remove"
	mBtnConfirmRemove  msg = "btn_confirm_remove"
	mBtnCancel         msg = "btn_cancel"
	mDeviceRemoved     msg = "device_removed"
	mSubscriptionEnded msg = "subscription_ended"
	mExpiresSoon       msg = "expires_soon"
	mConfigOnItsWay    msg = "config_on_its_way"
	mBtnDeviceRename   msg = "btn_device_rename"
	mAskDeviceName     msg = "ask_device_name"
	mDeviceRenamed     msg = "device_renamed"

	// What a failed request tells the user (see userError).
	mErrTrialUsed   msg = "err_trial_used"
	mErrHasAccess   msg = "err_has_access"
	mErrTrialOff    msg = "err_trial_disabled"
	mErrDeviceLimit msg = "err_device_limit"
	mErrNoSub       msg = "err_no_subscription"
	mErrNotFound    msg = "err_not_found"
	mErrNoAddress   msg = "err_no_free_address"
	mErrNoServer    msg = "err_no_server"
	// Locations: shown only when there are several.
	mErrLocationDown    msg = "err_location_down"
	mErrMoveInProgress  msg = "err_move_in_progress"
	mErrSameLocation    msg = "err_same_location"
	mPickLocation       msg = "pick_location"
	mPickMoveLocation   msg = "pick_move_location"
	mBtnLocation        msg = "btn_location"
	mBtnLocationDown    msg = "btn_location_down"
	mBtnAnyLocation     msg = "btn_any_location"
	mBtnChooseLocation  msg = "btn_choose_location"
	mBtnMoveDevice      msg = "btn_move_device"
	mLocationSet        msg = "location_set"
	mLocationAny        msg = "location_any"
	mDeviceWhere        msg = "device_where"
	mDeviceRetiring     msg = "device_retiring"
	mMoved              msg = "moved"
	mMovedConfirm       msg = "moved_confirm"
	mBtnRemoveOld       msg = "btn_remove_old"
	mErrBanned          msg = "err_banned"
	mErrApplyFailed     msg = "err_apply_failed"
	mErrOrderClosed     msg = "err_order_closed"
	mErrOrderGone       msg = "err_order_gone"
	mErrNoPrice         msg = "err_no_price"
	mErrMismatch        msg = "err_payment_mismatch"
	mErrInvalid         msg = "err_invalid"
	mErrConflict        msg = "err_conflict"
	mErrUnavailable     msg = "err_unavailable"
	mErrInternal        msg = "err_internal"
	mErrCheckoutStart   msg = "err_checkout_start"
	mErrDeviceName      msg = "err_device_name"
	mErrDeviceNameTaken msg = "err_device_name_taken"

	// Devices taken over from an old server (`wgbot import`).
	mClaimed        msg = "claimed"
	mClaimedKeyKept msg = "claimed_key_kept"
	mClaimUsed      msg = "err_claim_used"
	mClaimUnknown   msg = "err_claim_unknown"
	mNoClientKey    msg = "no_client_key"

	// Admin commands.
	mAdminUsage           msg = "admin_usage"
	mAdminStats           msg = "admin_stats"
	mAdminRevenueNone     msg = "admin_revenue_none"
	mStatsNow             msg = "stats_now"
	mStatsServer          msg = "stats_server"
	mStatsNodeDown        msg = "stats_node_down"
	mStatsDraining        msg = "stats_draining"
	mStatsWindow          msg = "stats_window"
	mStatsRevenue         msg = "stats_revenue"
	mStatsToday           msg = "stats_today"
	mStatsWeek            msg = "stats_week"
	mStatsMonth           msg = "stats_month"
	mAdminUser            msg = "admin_user"
	mAdminUserSub         msg = "admin_user_sub"
	mAdminUserSubs        msg = "admin_user_subs"
	mAdminUserDevices     msg = "admin_user_devices"
	mAdminUserDevice      msg = "admin_user_device"
	mAdminUserPayments    msg = "admin_user_payments"
	mAdminUserPayment     msg = "admin_user_payment"
	mAdminPaid            msg = "admin_paid"
	mAdminPaidRefunded    msg = "admin_paid_refunded"
	mAdminEarlier         msg = "admin_earlier"
	mPeerActive           msg = "peer_active"
	mPeerPaused           msg = "peer_paused"
	mPeerRemoved          msg = "peer_removed"
	mAdminYes             msg = "admin_yes"
	mAdminNo              msg = "admin_no"
	mAdminNoUser          msg = "admin_no_user"
	mAdminGranted         msg = "admin_granted"
	mAdminRevoked         msg = "admin_revoked"
	mAdminStale           msg = "admin_stale"
	mAdminBroadcastQueue  msg = "admin_broadcast_queued"
	mBroadcastAlreadySent msg = "broadcast_already_sent"
	mAdminBroadcastDone   msg = "admin_broadcast_done"
	mAdminBroadcastOff    msg = "admin_broadcast_off"
	mBroadcastPreview     msg = "broadcast_preview"
	mAudienceButton       msg = "audience_button"
	mBtnSendBroadcast     msg = "btn_send_broadcast"
	mAudienceAll          msg = "audience_all"
	mAudienceActive       msg = "audience_active"
	mAudienceExpired      msg = "audience_expired"
	mAudienceNeverPaid    msg = "audience_never_paid"
	mAdminRefunded        msg = "admin_refunded"
	mAdminRefundAgain     msg = "admin_refund_again"
	mAdminRefundRefused   msg = "admin_refund_refused"
	mAdminFailed          msg = "admin_failed"
	mAdminRevokeConfirm   msg = "admin_revoke_confirm"
	mBtnConfirmRevoke     msg = "btn_confirm_revoke"
	mAdminCancelled       msg = "admin_cancelled"
	mAccessRevoked        msg = "access_revoked"
	mAdminBanConfirm      msg = "admin_ban_confirm"
	mBtnConfirmBan        msg = "btn_confirm_ban"
	mAdminBanned          msg = "admin_banned"
	mAdminUnbanned        msg = "admin_unbanned"
	mAdminPanelLink       msg = "admin_panel_link"
	mAdminPanelOff        msg = "admin_panel_off"
	mBannedNotice         msg = "banned_notice"

	// A malformed admin command: what was wrong, and how it is written.
	mAdminWrong     msg = "admin_wrong"
	mWrongNoUser    msg = "wrong_no_user"
	mWrongUser      msg = "wrong_user"
	mWrongNoDays    msg = "wrong_no_days"
	mWrongDays      msg = "wrong_days"
	mWrongTooMany   msg = "wrong_too_many"
	mWrongNoText    msg = "wrong_no_text"
	mWrongNoCharge  msg = "wrong_no_charge"
	mWrongCharge    msg = "wrong_charge"
	mUsageUser      msg = "usage_user"
	mUsageGrant     msg = "usage_grant"
	mUsageRevoke    msg = "usage_revoke"
	mUsageBroadcast msg = "usage_broadcast"
	mUsageRefund    msg = "usage_refund"
	mUsageBan       msg = "usage_ban"
	mUsageUnban     msg = "usage_unban"
	// Referrals and promo codes.
	mBtnInvite          msg = "btn_invite"
	mBtnPromo           msg = "btn_promo"
	mCmdPromo           msg = "cmd_promo"
	mCmdInvite          msg = "cmd_invite"
	mInvite             msg = "invite"
	mInviteBoth         msg = "invite_both"
	mInviteReferrer     msg = "invite_referrer"
	mInviteInvited      msg = "invite_invited"
	mInviteStats        msg = "invite_stats"
	mFriendsOne         msg = "friends_one"
	mFriendsFew         msg = "friends_few"
	mFriendsMany        msg = "friends_many"
	mBonusReferrer      msg = "bonus_referrer"
	mBonusInvited       msg = "bonus_invited"
	mPromoAsk           msg = "promo_ask"
	mReceiptAsk         msg = "receipt_ask"
	mReceiptSaved       msg = "receipt_saved"
	mErrReceiptContact  msg = "err_receipt_contact"
	mAutorenewAbout     msg = "autorenew_about"
	mAutorenewOn        msg = "autorenew_on"
	mAutorenewOff       msg = "autorenew_off"
	mBtnAutorenewOff    msg = "btn_autorenew_off"
	mBtnSaveCardOff     msg = "btn_save_card_off"
	mBtnSaveCardOn      msg = "btn_save_card_on"
	mSaveCardTerms      msg = "save_card_terms"
	mRenewDeclined      msg = "renew_declined"
	mRenewCardGone      msg = "renew_card_gone"
	mRenewReleased      msg = "renew_released"
	mRenewUnconfirmed   msg = "renew_unconfirmed"
	mBtnPayByHand       msg = "btn_pay_by_hand"
	mBonusTakenBack     msg = "bonus_taken_back"
	mBonusTakenBackEnd  msg = "bonus_taken_back_end"
	mPromoWaiting       msg = "promo_waiting"
	mPromoDays          msg = "promo_days"
	mPromoDiscount      msg = "promo_discount"
	mPromoIssued        msg = "promo_issued"
	mPromoPlans         msg = "promo_plans"
	mPromoPercent       msg = "promo_percent"
	mErrPromoNotFound   msg = "err_promo_not_found"
	mErrPromoExpired    msg = "err_promo_expired"
	mErrPromoDisabled   msg = "err_promo_disabled"
	mErrPromoUsedUp     msg = "err_promo_used_up"
	mErrPromoRepeated   msg = "err_promo_repeated"
	mErrPromoNewOnly    msg = "err_promo_new_only"
	mErrPromoPending    msg = "err_promo_pending"
	mStatsRevenueExtra  msg = "stats_revenue_extra"
	mStatsPromos        msg = "stats_promos"
	mAdminPromoAdded    msg = "admin_promo_added"
	mAdminPromos        msg = "admin_promos"
	mAdminPromoDisabled msg = "admin_promo_disabled"
	mPromoLine          msg = "promo_line"
	mPromoNewOnly       msg = "promo_new_only"
	mPromoUntil         msg = "promo_until"
	mPromoOff           msg = "promo_off"
	mPromoExpired       msg = "promo_expired"
	mWrongPromo         msg = "wrong_promo"
	mUsagePromoAdd      msg = "usage_promo_add"
	mUsagePromoOff      msg = "usage_promo_off"

	// Auto-renewing Stars subscriptions.
	mMethodStarsMonthly        msg = "method_stars_monthly"
	mInvoiceTitleMonthly       msg = "invoice_title_monthly"
	mInvoiceDescriptionMonthly msg = "invoice_description_monthly"
	mSubscribeLink             msg = "subscribe_link"
	mBtnSubscribe              msg = "btn_subscribe"
	mRenewsOn                  msg = "renews_on"
	mRenewalOff                msg = "renewal_off"
	mBtnRenewOff               msg = "btn_renew_off"
	mBtnRenewOn                msg = "btn_renew_on"
	mRenewalCanceled           msg = "renewal_canceled"
	mRenewalResumed            msg = "renewal_resumed"
	mRenewsSoon                msg = "renews_soon"
	mErrNoStarSub              msg = "err_no_star_subscription"

	// Gifts.
	mBtnGift                msg = "btn_gift"
	mGiftInvoiceTitle       msg = "gift_invoice_title"
	mGiftInvoiceDescription msg = "gift_invoice_description"
	mGiftReady              msg = "gift_ready"
	mGiftIssued             msg = "gift_issued"
	mGiftRedeemed           msg = "gift_redeemed"
	mErrGiftRedeemed        msg = "err_gift_redeemed"
	mErrGiftRefunded        msg = "err_gift_refunded"
	mErrGiftNotFound        msg = "err_gift_not_found"

	// Traffic (issue 19): under each device, when it last connected and
	// its traffic this month; the connection check's tip.
	mDeviceSeen     msg = "device_seen"
	mDeviceNever    msg = "device_never"
	mAgoNow         msg = "ago_now"
	mAgoMinutesOne  msg = "ago_minutes_one"
	mAgoMinutesFew  msg = "ago_minutes_few"
	mAgoMinutesMany msg = "ago_minutes_many"
	mAgoHoursOne    msg = "ago_hours_one"
	mAgoHoursFew    msg = "ago_hours_few"
	mAgoHoursMany   msg = "ago_hours_many"
	mAgoDaysOne     msg = "ago_days_one"
	mAgoDaysFew     msg = "ago_days_few"
	mAgoDaysMany    msg = "ago_days_many"
	mBytesB         msg = "bytes_b"
	mBytesKB        msg = "bytes_kb"
	mBytesMB        msg = "bytes_mb"
	mBytesGB        msg = "bytes_gb"
	mBytesTB        msg = "bytes_tb"
	mConnectionTip  msg = "connection_tip"
	mStatsTop       msg = "stats_top"
	mStatsTopLine   msg = "stats_top_line"

	mQuotaWarn               msg = "quota_warn"
	mQuotaFull               msg = "quota_full"
	mBtnLargerPlan           msg = "btn_larger_plan"
	mTopUpCredited           msg = "topup_credited"
	mChooseTopUp             msg = "choose_topup"
	mTopUpInvoiceTitle       msg = "topup_invoice_title"
	mTopUpInvoiceDescription msg = "topup_invoice_description"
	mTopUpTitle              msg = "topup_title"
	mStatsOverQuota          msg = "stats_over_quota"
	mStatsOverQuotaLine      msg = "stats_over_quota_line"
	mOutageCredited          msg = "outage_credited"
	mUnitDays                msg = "unit_days"
	mUnitHours               msg = "unit_hours"
	mUnitMinutes             msg = "unit_minutes"
)

// catalogue is every text in every language. It is built fresh by New, so
// the package has no mutable state; texts are plain (no parse mode), so
// names and admin input need no escaping.
func catalogue() map[string]map[msg]string {
	return map[string]map[msg]string{
		langEN: {
			mWelcome:         "Hi, %s! This bot gives you a fast, private WireGuard VPN.\n\nTake the free trial or choose a plan below.",
			mWelcomeLive:     "Hi, %s! Your VPN is active until %s.",
			mWelcomeEnded:    "Hi, %s! Your subscription has ended. Renew it and your devices work again.",
			mWelcomeEndedNew: "Hi, %s! Your subscription has ended, and its devices no longer work. Buy a plan to get a new device config.",
			mBtnRenew:        "💳 Renew",
			mDateIn:          "%s (in %s)",
			mDateSoon:        "%s (in less than a day)",
			mMenu:            "Choose an action:",
			mBtnTrial:        "🎁 Free trial",
			mBtnBuy:          "💳 Buy",
			mBtnSub:          "📱 My subscription",
			mBtnHelp:         "❓ Help",
			mBtnLanguage:     "🌐 Language",
			mBtnBack:         "« Back",
			mHelp:            "How it works:\n• Free trial: %s of VPN on one device, once.\n• Buy: choose a plan and pay with Telegram Stars or another method.\n• My subscription: expiry date, devices, configs and QR codes.\n\nCommands: /start opens the menu, /lang changes the language, /paysupport helps with payments, /promo CODE enters a promo code, /invite gives your link for inviting friends.\n\nSupport: %s",
			mPaySupport:      "Questions about a payment or a refund? Write to %s and include the date of the payment; for Telegram Stars also the transaction ID from the receipt.",
			mSupportDefault:  "the bot's administrator",
			mBtnSupport:      "✉️ Write to support",
			mChooseLanguage:  "Choose your language:",
			mLanguageName:    "English",
			mLanguageSet:     "Language: English.",
			mOutdated:        "This button is out of date. Use the newest message, or send /start.",
			mTooLong:         "That message is too long to read. The bot works with its buttons: send /start for the menu.",
			mUnknownCommand:  "There is no command /%s. /start opens the menu, /help says how everything works.",
			mBusy:            "⏳ Working on it…",
			mSlowDown:        "You are sending messages too fast, so some were skipped. Wait a few seconds, then try again.",
			mSlowDownButton:  "Too fast: wait a few seconds.",
			mCmdStart:        "Main menu",
			mCmdHelp:         "How it works and support",
			mCmdLang:         "Change the language",
			mCmdPaySupport:   "Help with payments and refunds",

			mDaysOne:         "%d day",
			mDaysFew:         "%d days",
			mDaysMany:        "%d days",
			mUpToDevicesOne:  "up to %d device",
			mUpToDevicesFew:  "up to %d devices",
			mUpToDevicesMany: "up to %d devices",

			mTrialIssued:   "Your free trial is active until %s.",
			mConfigCaption: "WireGuard config for %s",
			mQRCaption:     "QR code for %s: scan it in the WireGuard app.",
			mInstallSteps:  "How to connect:\n📱 Phone: install WireGuard (App Store or Google Play), tap “+”, choose “Scan from QR code” and scan the picture above.\n💻 Computer: install WireGuard from wireguard.com/install, choose “Import tunnel(s) from file” and pick %s.\nThen switch the tunnel on.\n\nKeep the config private: whoever has it uses your device slot.",
			mApplyPending:  "The VPN server is still taking your device on; if it does not connect at once, try again in a minute.",

			mPlans:              "Choose a plan:\n\n%s",
			mPlanLine:           "• %s: %s, %s, %s",
			mPlanButton:         "%s · %s",
			mChooseMethod:       "Plan: %s (%s, %s).\nChoose how to pay:",
			mMethodStars:        "⭐ Telegram Stars · %s",
			mMethodButton:       "%s · %s",
			mInvoiceTitle:       "VPN for %s",
			mInvoiceDescription: "WireGuard VPN for %s on %s.",
			mPayLink:            "To pay %s with %s, use the button below. The link is valid for 24 hours.",
			mPayLinkMethod:      "To pay %s, use the button below (payment method: %s). The link is valid for 24 hours.",
			mPayStarts:          "Your access starts as soon as the payment is confirmed.",
			mPayExtends:         "Once the payment is confirmed, your subscription is extended by %s from its current expiry, to %s.",
			mBtnPay:             "Pay %s",
			mPaidNew:            "Payment received, thank you! Your subscription is active until %s. Your config follows.",
			mPaidExtended:       "Payment received, thank you! Your subscription is extended until %s.",
			mCheckoutCanceled:   "Payment cancelled: the payment of %s did not go through, and nothing was charged. Try again?",
			mBtnTryAgain:        "🔁 Try again",
			mInvoiceClosed:      "Payment cancelled: this invoice has expired, and nothing was charged. Try again?",
			mInvoicePaid:        "This invoice is already paid; nothing more was charged. Your subscription is in the menu.",
			mPaymentProblem:     "We received your payment but could not apply it automatically. Please write to %s and quote this ID: %s",
			mRefundedUntil:      "Your payment was refunded. Your subscription now ends on %s.",
			mRefundedEnded:      "Your payment was refunded and your access has ended.",
			mGranted:            "You received %s of VPN access, valid until %s.",

			mNoSubscription:    "You have no subscription yet. Take the free trial or choose a plan.",
			mSubStatus:         "Subscription: %s",
			mSubPlan:           "Plan: %s",
			mValidUntil:        "Valid until: %s",
			mEndedOn:           "Ended: %s",
			mSubDevices:        "Devices: %d of %d",
			mStatusActive:      "active ✅",
			mStatusExpired:     "expired",
			mStatusRevoked:     "ended",
			mPlanTrial:         "free trial",
			mPlanGift:          "gift",
			mPlanRetired:       "a paid plan",
			mDeviceLine:        "• %s, %s",
			mDeviceOff:         "• %s, %s (paused until you renew)",
			mBtnDeviceConfig:   "📄 %s",
			mBtnDeviceRemove:   "🗑 %s",
			mBtnAddDevice:      "➕ Add a device",
			mBtnExtend:         "💳 Extend",
			mConfirmRemove:     "Remove %s (%s)? Its config stops working at once.",
			mBtnConfirmRemove:  "Yes, remove",
			mBtnCancel:         "Cancel",
			mDeviceRemoved:     "%s was removed.",
			mSubscriptionEnded: "Your subscription has ended and your devices are paused. Choose a plan to continue: your configs start working again.",
			mExpiresSoon:       "Your subscription ends on %s, in %s. Extend it to keep your VPN working without a break.",
			mConfigOnItsWay:    "Your config is on its way: it arrives here as soon as the VPN server has it ready.",
			mBtnDeviceRename:   "✏️",
			mAskDeviceName:     "Send a new name for %s, such as “Phone” or “Work laptop”: up to 24 characters.",
			mDeviceRenamed:     "Renamed to %s.",

			mErrTrialUsed:       "You have already used your free trial. Choose a plan to keep using the VPN.",
			mErrHasAccess:       "You already have an active subscription, so no trial is needed. Open “My subscription” for your config.",
			mErrTrialOff:        "The free trial is not available right now.",
			mErrDeviceLimit:     "All device slots of your plan are in use. Remove a device or choose a bigger plan.",
			mErrNoSub:           "You have no active subscription. Take the free trial or choose a plan.",
			mErrNotFound:        "Not found.",
			mErrNoAddress:       "The server is full right now. Please try again later.",
			mErrNoServer:        "Our VPN servers are down or full right now, so no new device can be set up. Please try again later.",
			mErrLocationDown:    "This location is down or full right now. Pick another one:",
			mErrMoveInProgress:  "A device you moved is still waiting for its old config to be removed. Remove it under “My subscription” first, or wait a day.",
			mErrSameLocation:    "This device is already there.",
			mPickLocation:       "Where should your VPN be? Pick a location:",
			mPickMoveLocation:   "Move %s to which location? You get a new config; the old one keeps working until you remove it.",
			mBtnLocation:        "📍 %s",
			mBtnLocationDown:    "📍 %s (down)",
			mBtnAnyLocation:     "⚡ Any, the fastest to set up",
			mBtnChooseLocation:  "📍 Choose a location",
			mBtnMoveDevice:      "📍 Move %s",
			mLocationSet:        "New devices will be in %s.",
			mLocationAny:        "any",
			mDeviceWhere:        "%s, in %s",
			mDeviceRetiring:     "• %s, %s (old config, removed %s)",
			mMoved:              "Here is the new config of your device, now in %s. Import it in the WireGuard app.",
			mMovedConfirm:       "Once the new config works, remove the old one. Otherwise it is removed by itself after a day.",
			mBtnRemoveOld:       "🗑 The new one works: remove the old config",
			mErrBanned:          "Your account is blocked. Write to support if you think this is a mistake.",
			mErrApplyFailed:     "The VPN server could not take the change just now. Nothing was used up; please try again in a minute.",
			mErrOrderClosed:     "This order is already closed. Open “Buy” to create a new one.",
			mErrOrderGone:       "This order cannot be paid. Open “Buy” to create a new one.",
			mErrNoPrice:         "This plan cannot be paid this way.",
			mErrMismatch:        "The payment does not match the order.",
			mErrInvalid:         "That request is not valid.",
			mErrConflict:        "That cannot be done right now.",
			mErrUnavailable:     "The service is busy right now. Please try again in a minute.",
			mErrInternal:        "Something went wrong on our side. Please try again later.",
			mErrCheckoutStart:   "The payment page could not be opened. Please try again later or choose another method.",
			mErrDeviceName:      "That name does not fit: use 1 to 24 letters, digits, spaces or signs, and not a name like device-3. Send another name.",
			mErrDeviceNameTaken: "Another of your devices already has that name. Send another one.",
			mClaimed:            "✅ %s is yours now. Your access is valid until %s.",
			mClaimedKeyKept: "✅ %s is yours now. Your access is valid until %s.\n\n" +
				"This device was moved to the bot without its private key, so the bot cannot show its config. " +
				"Keep using the config you already have on it: it keeps working.",
			mClaimUsed:    "This link was already used: the device belongs to whoever opened it first. If that was not you, contact support.",
			mClaimUnknown: "This link is not valid. Check that you opened the whole link, or ask whoever sent it for a new one.",
			mNoClientKey: "%s was moved to the bot without its private key, so its config cannot be shown again. " +
				"The config already on the device keeps working.",

			mAdminUsage:           "Admin commands:\n/stats\n/user <id|@username>\n/grant <id|@username> <days>\n/revoke <id|@username>\n/ban <id|@username>\n/unban <id|@username>\n/broadcast <text>\n/refund <telegram_payment_charge_id>\n/promoadd <CODE> days=<n>|percent=<n>|fixed=<amount><CUR> …\n/promos\n/promooff <CODE>\n/panel",
			mAdminStats:           "📊 Statistics\n\n%s",
			mAdminRevenueNone:     "• none",
			mStatsNow:             "Now:\nUsers in total: %d\nLive subscriptions: %d (of them live trials: %d)\nLive subscriptions ending within 3 days: %d\nPayments pending (open orders): %d\nActive devices by server:\n%s",
			mStatsServer:          "• %s: %d",
			mStatsNodeDown:        " ⚠ node down: no new devices",
			mStatsDraining:        " (draining: no new devices)",
			mStatsWindow:          "%s:\nNew users: %d\nTrials started: %d\nTrials started that led to a payment: %d of %d (%s)\nPayments credited, not refunded: %d\nPayments failed (orders cancelled or expired unpaid): %d\nRevenue net of refunds, by provider:\n%s",
			mStatsRevenue:         "• %s: %s",
			mStatsToday:           "Today (since 00:00 UTC)",
			mStatsWeek:            "Last 7 days",
			mStatsMonth:           "Last 30 days",
			mAdminUser:            "User id %d (@%s, %s)\nLanguage: %s\nRegistered: %s\nBlocked the bot: %s\nBanned: %s",
			mAdminUserSub:         "• %s, %s, %s → %s, devices: %d of %d",
			mAdminUserSubs:        "Subscriptions:\n%s",
			mAdminUserDevices:     "Devices:\n%s",
			mAdminUserDevice:      "• %s, %s, created %s, %s",
			mAdminUserPayments:    "Payments (for a stars payment, the charge id after the provider is what /refund takes; other providers refund in their own dashboards):\n%s",
			mAdminUserPayment:     "• %s %s: %s for %s, %s",
			mAdminPaid:            "credited %s",
			mAdminPaidRefunded:    "credited %s, refunded %s",
			mAdminEarlier:         "(earlier ones left out: %d)",
			mPeerActive:           "active",
			mPeerPaused:           "paused until renewal",
			mPeerRemoved:          "removed",
			mAdminYes:             "yes",
			mAdminNo:              "no",
			mAdminNoUser:          "No such user.",
			mAdminGranted:         "Granted %s to id %d; valid until %s.",
			mAdminRevoked:         "Access of id %d revoked.",
			mAdminStale:           "Nothing done: id %d has a new subscription since this question. Run the command again if it should end too.",
			mBroadcastAlreadySent: "This broadcast was already sent.",
			mAdminBroadcastQueue:  "Broadcast queued. Audience: %s. Recipients: %d. The report with delivered and blocked counts follows when it is done.",
			mBroadcastPreview:     "Preview: the next message is the broadcast exactly as users get it. Choose who gets it; nothing is sent before you press Send.",
			mAudienceButton:       "%s: %d",
			mBtnSendBroadcast:     "📨 Send · %s: %d",
			mAudienceAll:          "Everyone",
			mAudienceActive:       "Live subscription",
			mAudienceExpired:      "Subscription ended",
			mAudienceNeverPaid:    "Never paid",
			mAdminBroadcastDone:   "Broadcast finished.\nDelivered: %d\nBlocked the bot: %d\nFailed: %d",
			mAdminBroadcastOff:    "Broadcasts are not set up in this process (they need the job queue).",
			mAdminRefunded:        "Refunded payment %s of id %d; %s taken back.",
			mAdminRefundAgain:     "Payment %s was already refunded.",
			mAdminRefundRefused:   "Telegram refused the refund: %s",
			mAdminFailed:          "Failed: %s",
			mAdminRevokeConfirm:   "Revoke the access of id %d (@%s)? Their devices stop working at once and the remaining time is not given back.",
			mBtnConfirmRevoke:     "Yes, revoke",
			mAdminCancelled:       "Cancelled; nothing changed.",
			mAccessRevoked:        "Your VPN access has been ended by the administrator, and your devices no longer connect. If you think this is a mistake, write to %s.",
			mAdminBanConfirm:      "Ban id %d (@%s)? Their access ends at once and they can get none until /unban.",
			mBtnConfirmBan:        "Yes, ban",
			mAdminBanned:          "id %d is banned; their access has ended.",
			mAdminUnbanned:        "id %d is no longer banned.",
			mAdminPanelLink:       "Your sign-in link to the web panel, for you only: it works once, within 5 minutes.\n%s",
			mAdminPanelOff:        "The web panel is off: set PANEL_URL to its public address.",
			mBannedNotice:         "Your account has been blocked by the administrator and your VPN access has ended. If you think this is a mistake, write to %s.",

			mAdminWrong:         "%s\nHow to write it: %s",
			mWrongNoUser:        "Name the user: a Telegram id or @username.",
			mWrongUser:          "“%s” is neither a Telegram id nor a @username.",
			mWrongNoDays:        "Say how many days to grant.",
			mWrongDays:          "“%s” is not a number of days: write a whole number such as 30.",
			mWrongTooMany:       "There are more words than the command takes.",
			mWrongNoText:        "Write the text to send after the command.",
			mWrongNoCharge:      "Give the payment's charge id: /user shows it with the user's payments.",
			mWrongCharge:        "“%s” is not a payment charge id.",
			mUsageUser:          "/user <id|@username>",
			mUsageGrant:         "/grant <id|@username> <days>",
			mUsageRevoke:        "/revoke <id|@username>",
			mUsageBroadcast:     "/broadcast <text>",
			mUsageRefund:        "/refund <telegram_payment_charge_id>",
			mUsageBan:           "/ban <id|@username>",
			mUsageUnban:         "/unban <id|@username>",
			mBtnInvite:          "👥 Invite friends",
			mBtnPromo:           "🎟 Promo code",
			mCmdPromo:           "Enter a promo code",
			mCmdInvite:          "Invite friends",
			mInvite:             "Your personal link to invite friends:\n%s",
			mInviteBoth:         "When a friend who joined by it pays for the first time, you get %s and they get %s.",
			mInviteReferrer:     "When a friend who joined by it pays for the first time, you get %s.",
			mInviteInvited:      "A friend who joins by it gets %s with their first payment.",
			mInviteStats:        "Joined by your link: %s. Of them paid: %d. Days you earned: %s.",
			mFriendsOne:         "%d friend",
			mFriendsFew:         "%d friends",
			mFriendsMany:        "%d friends",
			mBonusReferrer:      "A friend you invited made their first payment: you received %s. Your subscription is active until %s.",
			mBonusInvited:       "Thank you for joining by a friend's link: you received %s more. Your subscription is active until %s.",
			mPromoAsk:           "Send your promo code as a message, or type /promo CODE.",
			mReceiptAsk:         "By Russian law (54-FZ) every card payment comes with an electronic receipt. Send the email or phone number to get it at, as a message. It is asked once and kept for your later payments.",
			mReceiptSaved:       "Receipts will go to %s. Choose the plan again to pay.",
			mAutorenewAbout:     "Auto-renewal: the bank card you pay with next is saved at YooKassa and charged for the same plan a day before your access ends; you are told if a charge fails, and it is never retried. Send /autorenew on to agree, /autorenew off to stop it at any time.",
			mAutorenewOn:        "Auto-renewal is on: the card of your next card payment will be saved and charged a day before each expiry. Cancel it at any time with the button below or /autorenew off.",
			mAutorenewOff:       "Auto-renewal is off: no card will be saved, and a saved one will not be charged again.",
			mBtnAutorenewOff:    "Cancel auto-renewal",
			mBtnSaveCardOff:     "☐ Renew automatically with this card",
			mBtnSaveCardOn:      "☑ Renew automatically with this card",
			mSaveCardTerms:      "Auto-renewal: YooKassa keeps the card you pay with, and the same plan is charged to it a day before each expiry. You are told if a charge fails, and it is never retried. Cancel at any time in My subscription.",
			mRenewDeclined:      "The automatic renewal of %s from your saved card was declined by the bank, so nothing was charged. Your access runs until %s; pay by hand to keep it.",
			mRenewCardGone:      "The automatic renewal of %s was not charged: your saved card has expired or its permission was withdrawn, so auto-renewal from it is off. Nothing was charged. Your access runs until %s; pay by hand to keep it, and tick “Renew automatically” at checkout to save a new card.",
			mRenewReleased:      "The automatic renewal of %s from your saved card did not complete: the bank did not confirm the charge and it was canceled, so nothing was taken; if the amount was held on your card, your bank releases it. Your access runs until %s; pay by hand to keep it.",
			mRenewUnconfirmed:   "The automatic renewal of %s from your saved card has not been confirmed by the bank for a day, so we stopped waiting and will not charge again. If the money was taken, the days are added by themselves once the bank confirms it; please check your statement before paying by hand. Your access runs until %s.",
			mBtnPayByHand:       "Pay by hand",
			mBonusTakenBack:     "The payment of a friend you invited was refunded, so their referral bonus is taken back: %s less. Your subscription is active until %s.",
			mBonusTakenBackEnd:  "The payment of a friend you invited was refunded, so their referral bonus is taken back: %s less. That was the rest of your access, so your devices no longer connect; choose a plan to continue.",
			mErrReceiptContact:  "That is neither an email nor a phone number with its country code (such as +7 900 123-45-67). Please send it again.",
			mPromoWaiting:       "Your promo code %s takes %s off your next order.",
			mPromoDays:          "Promo code %s accepted: you received %s. Your subscription is active until %s.",
			mPromoIssued:        "Promo code accepted: you received %s of VPN access, valid until %s.",
			mPromoDiscount:      "Promo code %s accepted: %s off your next order. Open Buy to use it.",
			mPromoPlans:         "It applies to: %s.",
			mPromoPercent:       "%s%%",
			mErrPromoNotFound:   "There is no such promo code. Check the spelling and send it again.",
			mErrPromoExpired:    "This promo code has expired and can no longer be used.",
			mErrPromoDisabled:   "This promo code has been switched off and can no longer be used.",
			mErrPromoUsedUp:     "This promo code has been used up: it has no uses left.",
			mErrPromoRepeated:   "You have already used this promo code.",
			mErrPromoNewOnly:    "This promo code is only for new users who have not paid yet.",
			mErrPromoPending:    "You already have a discount waiting for your next order. Use it first, then enter another code.",
			mStatsRevenueExtra:  "Discounts given by promo codes:\n%s\nJoined by referral links: %d\nReferral bonuses given, not taken back: %d\nPromo codes redeemed: %d",
			mStatsPromos:        "Promo codes: %d, of them redeemable now: %d",
			mAdminPromoAdded:    "Promo code created:\n%s",
			mAdminPromos:        "Promo codes:\n%s",
			mAdminPromoDisabled: "Promo code %s is disabled: it can no longer be redeemed.",
			mPromoLine:          "• %s: %s; used: %s; per user: %d%s",
			mPromoNewOnly:       "new users only",
			mPromoUntil:         "until %s",
			mPromoOff:           "disabled",
			mPromoExpired:       "expired",
			mWrongPromo:         "Could not read “%s”.",
			mUsagePromoAdd:      "/promoadd <CODE> days=<n> | percent=<n> | fixed=<minor units><CURRENCY> [uses=<n>] [per_user=<n>] [until=YYYY-MM-DD] [plans=<plan>,<plan>] [new]",
			mUsagePromoOff:      "/promooff <CODE>",

			mDeviceSeen:     "   last connected %s · %s this month",
			mDeviceNever:    "   not connected yet",
			mAgoNow:         "just now",
			mAgoMinutesOne:  "%d minute ago",
			mAgoMinutesFew:  "%d minutes ago",
			mAgoMinutesMany: "%d minutes ago",
			mAgoHoursOne:    "%d hour ago",
			mAgoHoursFew:    "%d hours ago",
			mAgoHoursMany:   "%d hours ago",
			mAgoDaysOne:     "%d day ago",
			mAgoDaysFew:     "%d days ago",
			mAgoDaysMany:    "%d days ago",
			mBytesB:         "%s B",
			mBytesKB:        "%s KB",
			mBytesMB:        "%s MB",
			mBytesGB:        "%s GB",
			mBytesTB:        "%s TB",
			mConnectionTip: "Your device %s has not connected yet. If the VPN does not work:\n" +
				"1. Import the config file (or scan the QR code) in the WireGuard app.\n" +
				"2. Switch the tunnel on in the app.\n" +
				"3. Still nothing? Try another network (mobile data instead of Wi-Fi, or the other way round) or another location.",
			mStatsTop:                  "Most traffic this month:\n%s",
			mStatsTopLine:              "• %s: %s",
			mOutageCredited:            "Sorry: our server in %s was unavailable for %s. We have added %s to your subscription; it now runs until %s.",
			mUnitDays:                  "d",
			mUnitHours:                 "h",
			mUnitMinutes:               "min",
			mMethodStarsMonthly:        "⭐ Monthly, renews automatically · %s",
			mInvoiceTitleMonthly:       "VPN, monthly",
			mInvoiceDescriptionMonthly: "WireGuard VPN for %s on %s, renewed automatically every 30 days until you cancel.",
			mSubscribeLink:             "Subscription: %s every %s, charged automatically in Telegram Stars. You can turn renewal off at any time in “My subscription”; the days already paid for stay yours.",
			mBtnSubscribe:              "⭐ Subscribe · %s",
			mRenewsOn:                  "Renews automatically on %s",
			mRenewalOff:                "Auto-renewal is off: no more charges after %s",
			mBtnRenewOff:               "⏹ Turn off auto-renewal",
			mBtnRenewOn:                "🔁 Turn on auto-renewal",
			mRenewalCanceled:           "Auto-renewal is off. Nothing more will be charged; the time already paid for stays (the current period ends on %s).",
			mRenewalResumed:            "Auto-renewal is on again: the next charge is on %s.",
			mRenewsSoon:                "Your subscription renews automatically on %s, in %s: there is nothing to do. To stop it, turn auto-renewal off in “My subscription”.",
			mErrNoStarSub:              "You have no auto-renewing subscription.",
			mBtnGift:                   "🎁 Buy as a gift · %s",
			mGiftInvoiceTitle:          "Gift: VPN for %s",
			mGiftInvoiceDescription:    "A gift of WireGuard VPN for %s on %s. You get a link to pass on; whoever opens it first gets the days.",
			mGiftReady:                 "Your gift is paid: %s of VPN. Send this link to whom it is for; whoever opens it first gets the days, and it works once:\n%s",
			mGiftIssued:                "🎁 You were given %s of VPN! Your subscription is active until %s.",
			mGiftRedeemed:              "🎁 You were given %s of VPN! Your subscription now runs until %s.",
			mErrGiftRedeemed:           "This gift was already taken by someone who opened the link first.",
			mErrGiftRefunded:           "This gift was refunded to its buyer and no longer works.",
			mErrGiftNotFound:           "This gift link does not work. Check that it was copied whole.",
			mQuotaWarn:                 "You have used %s of this month's %s of traffic. At the limit your devices pause until %s, or until you add traffic.",
			mQuotaFull:                 "This month's traffic (%s) is used up, so your devices are paused until %s. Add traffic or choose a larger plan to switch them back on now: they keep their settings.",
			mBtnLargerPlan:             "⬆️ A larger plan",
			mTopUpCredited:             "Payment received, thank you! %s more traffic this month; paused devices work again.",
			mChooseTopUp:               "Top-up: %s more traffic this month.\nChoose how to pay:",
			mTopUpInvoiceTitle:         "VPN traffic +%s",
			mTopUpInvoiceDescription:   "%s more traffic this month for your WireGuard VPN.",
			mTopUpTitle:                "+%s",
			mStatsOverQuota:            "Over their traffic quota this month:\n%s",
			mStatsOverQuotaLine:        "• %s: %s of %s",
		},
		langRU: {
			mWelcome:         "Привет, %s! Этот бот даёт быстрый и приватный VPN на WireGuard.\n\nВозьмите бесплатный пробный период или выберите тариф ниже.",
			mWelcomeLive:     "Привет, %s! Ваш VPN действует до %s.",
			mWelcomeEnded:    "Привет, %s! Ваша подписка закончилась. Продлите её, и ваши устройства снова заработают.",
			mWelcomeEndedNew: "Привет, %s! Ваша подписка закончилась, и её устройства больше не работают. Купите тариф, чтобы получить настройки нового устройства.",
			mBtnRenew:        "💳 Продлить",
			mDateIn:          "%s (через %s)",
			mDateSoon:        "%s (меньше чем через сутки)",
			mMenu:            "Выберите действие:",
			mBtnTrial:        "🎁 Пробный период",
			mBtnBuy:          "💳 Купить",
			mBtnSub:          "📱 Моя подписка",
			mBtnHelp:         "❓ Помощь",
			mBtnLanguage:     "🌐 Язык",
			mBtnBack:         "« Назад",
			mHelp:            "Как это работает:\n• Пробный период: %s VPN на одном устройстве, один раз.\n• Купить: выберите тариф и оплатите звёздами Telegram или другим способом.\n• Моя подписка: срок, устройства, конфиги и QR-коды.\n\nКоманды: /start открывает меню, /lang меняет язык, /paysupport помогает с оплатой, /promo КОД вводит промокод, /invite даёт ссылку для приглашения друзей.\n\nПоддержка: %s",
			mPaySupport:      "Вопрос об оплате или возврате? Напишите %s и укажите дату платежа, а для звёзд Telegram ещё и ID транзакции из чека.",
			mSupportDefault:  "администратору бота",
			mBtnSupport:      "✉️ Написать в поддержку",
			mChooseLanguage:  "Выберите язык:",
			mLanguageName:    "Русский",
			mLanguageSet:     "Язык: русский.",
			mOutdated:        "Эта кнопка устарела. Воспользуйтесь последним сообщением или отправьте /start.",
			mTooLong:         "Это сообщение слишком длинное. Бот работает с кнопками: отправьте /start, чтобы открыть меню.",
			mUnknownCommand:  "Команды /%s нет. /start открывает меню, /help рассказывает, как всё устроено.",
			mBusy:            "⏳ Уже делаем…",
			mSlowDown:        "Вы отправляете сообщения слишком часто, часть из них пропущена. Подождите несколько секунд и попробуйте снова.",
			mSlowDownButton:  "Слишком часто: подождите несколько секунд.",
			mCmdStart:        "Главное меню",
			mCmdHelp:         "Как это работает и поддержка",
			mCmdLang:         "Сменить язык",
			mCmdPaySupport:   "Помощь с оплатой и возвратом",

			mDaysOne:         "%d день",
			mDaysFew:         "%d дня",
			mDaysMany:        "%d дней",
			mUpToDevicesOne:  "до %d устройства",
			mUpToDevicesFew:  "до %d устройств",
			mUpToDevicesMany: "до %d устройств",

			mTrialIssued:   "Пробный период действует до %s.",
			mConfigCaption: "Конфиг WireGuard для %s",
			mQRCaption:     "QR-код для %s: отсканируйте его в приложении WireGuard.",
			mInstallSteps:  "Как подключиться:\n📱 Телефон: установите WireGuard (App Store или Google Play), нажмите «+», выберите «Сканировать QR-код» и наведите камеру на картинку выше.\n💻 Компьютер: установите WireGuard с wireguard.com/install, выберите «Импорт туннелей из файла» и укажите %s.\nЗатем включите туннель.\n\nНе передавайте конфиг другим: тот, у кого он есть, занимает место вашего устройства.",
			mApplyPending:  "VPN-сервер ещё добавляет ваше устройство; если сразу не подключится, попробуйте через минуту.",

			mPlans:              "Выберите тариф:\n\n%s",
			mPlanLine:           "• %s: %s, %s, %s",
			mPlanButton:         "%s · %s",
			mChooseMethod:       "Тариф: %s (%s, %s).\nВыберите способ оплаты:",
			mMethodStars:        "⭐ Звёзды Telegram · %s",
			mMethodButton:       "%s · %s",
			mInvoiceTitle:       "VPN на %s",
			mInvoiceDescription: "VPN на WireGuard на %s, %s.",
			mPayLink:            "Чтобы оплатить %s через %s, нажмите кнопку ниже. Ссылка действует 24 часа.",
			mPayLinkMethod:      "Чтобы оплатить %s, нажмите кнопку ниже (способ оплаты: %s). Ссылка действует 24 часа.",
			mPayStarts:          "Доступ откроется, как только платёж подтвердится.",
			mPayExtends:         "Когда платёж подтвердится, подписка продлится на %s от текущего срока, до %s.",
			mBtnPay:             "Оплатить %s",
			mPaidNew:            "Оплата получена, спасибо! Подписка действует до %s. Конфиг ниже.",
			mPaidExtended:       "Оплата получена, спасибо! Подписка продлена до %s.",
			mCheckoutCanceled:   "Оплата отменена: платёж на %s не прошёл, деньги не списаны. Попробовать ещё раз?",
			mBtnTryAgain:        "🔁 Попробовать снова",
			mInvoiceClosed:      "Оплата отменена: этот счёт устарел, деньги не списаны. Попробовать ещё раз?",
			mInvoicePaid:        "Этот счёт уже оплачен, повторно ничего не списано. Подписка — в меню.",
			mPaymentProblem:     "Мы получили ваш платёж, но не смогли применить его автоматически. Напишите, пожалуйста, %s и укажите этот ID: %s",
			mRefundedUntil:      "Ваш платёж возвращён. Подписка теперь заканчивается %s.",
			mRefundedEnded:      "Ваш платёж возвращён, доступ закрыт.",
			mGranted:            "Вам начислено %s доступа к VPN, до %s.",

			mNoSubscription:    "У вас пока нет подписки. Возьмите пробный период или выберите тариф.",
			mSubStatus:         "Подписка: %s",
			mSubPlan:           "Тариф: %s",
			mValidUntil:        "Действует до: %s",
			mEndedOn:           "Закончилась: %s",
			mSubDevices:        "Устройства: %d из %d",
			mStatusActive:      "активна ✅",
			mStatusExpired:     "истекла",
			mStatusRevoked:     "закрыта",
			mPlanTrial:         "пробный период",
			mPlanGift:          "подарок",
			mPlanRetired:       "платный тариф",
			mDeviceLine:        "• %s, %s",
			mDeviceOff:         "• %s, %s (приостановлено до продления)",
			mBtnDeviceConfig:   "📄 %s",
			mBtnDeviceRemove:   "🗑 %s",
			mBtnAddDevice:      "➕ Добавить устройство",
			mBtnExtend:         "💳 Продлить",
			mConfirmRemove:     "Удалить %s (%s)? Его конфиг сразу перестанет работать.",
			mBtnConfirmRemove:  "Да, удалить",
			mBtnCancel:         "Отмена",
			mDeviceRemoved:     "%s удалено.",
			mSubscriptionEnded: "Подписка закончилась, устройства приостановлены. Выберите тариф, и ваши конфиги снова заработают.",
			mExpiresSoon:       "Подписка заканчивается %s, через %s. Продлите её, чтобы VPN работал без перерыва.",
			mConfigOnItsWay:    "Конфиг уже в пути: он придёт сюда, как только VPN-сервер его подготовит.",
			mBtnDeviceRename:   "✏️",
			mAskDeviceName:     "Пришлите новое имя для %s, например «Телефон» или «Рабочий ноутбук»: не длиннее 24 символов.",
			mDeviceRenamed:     "Новое имя: %s.",

			mErrTrialUsed:       "Вы уже использовали пробный период. Выберите тариф, чтобы продолжить пользоваться VPN.",
			mErrHasAccess:       "У вас уже есть активная подписка, пробный период не нужен. Конфиг в разделе «Моя подписка».",
			mErrTrialOff:        "Пробный период сейчас недоступен.",
			mErrDeviceLimit:     "Все места для устройств по вашему тарифу заняты. Удалите устройство или выберите тариф побольше.",
			mErrNoSub:           "У вас нет активной подписки. Возьмите пробный период или выберите тариф.",
			mErrNotFound:        "Не найдено.",
			mErrNoAddress:       "Сервер сейчас заполнен. Попробуйте позже.",
			mErrNoServer:        "Наши VPN-серверы сейчас недоступны или заполнены, новое устройство подключить нельзя. Попробуйте позже.",
			mErrLocationDown:    "Эта локация сейчас недоступна или заполнена. Выберите другую:",
			mErrMoveInProgress:  "Перенесённое раньше устройство ещё ждёт удаления старого конфига. Сначала удалите его в «Моей подписке» или подождите день.",
			mErrSameLocation:    "Это устройство уже там.",
			mPickLocation:       "Где должен быть ваш VPN? Выберите локацию:",
			mPickMoveLocation:   "В какую локацию перенести %s? Вы получите новый конфиг, а старый работает, пока вы его не удалите.",
			mBtnLocation:        "📍 %s",
			mBtnLocationDown:    "📍 %s (недоступна)",
			mBtnAnyLocation:     "⚡ Любая, где быстрее",
			mBtnChooseLocation:  "📍 Выбрать локацию",
			mBtnMoveDevice:      "📍 Перенести %s",
			mLocationSet:        "Новые устройства будут в локации %s.",
			mLocationAny:        "любая",
			mDeviceWhere:        "%s, локация %s",
			mDeviceRetiring:     "• %s, %s (старый конфиг, удалится %s)",
			mMoved:              "Вот новый конфиг вашего устройства, теперь в локации %s. Импортируйте его в приложение WireGuard.",
			mMovedConfirm:       "Когда новый конфиг заработает, удалите старый. Иначе он удалится сам через сутки.",
			mBtnRemoveOld:       "🗑 Новый работает: удалить старый конфиг",
			mErrBanned:          "Ваш аккаунт заблокирован. Если это ошибка, напишите в поддержку.",
			mErrApplyFailed:     "VPN-сервер сейчас не смог принять изменение. Ничего не потрачено, попробуйте через минуту.",
			mErrOrderClosed:     "Этот заказ уже закрыт. Откройте «Купить» и создайте новый.",
			mErrOrderGone:       "Этот заказ нельзя оплатить. Откройте «Купить» и создайте новый.",
			mErrNoPrice:         "Этот тариф нельзя оплатить таким способом.",
			mErrMismatch:        "Платёж не совпадает с заказом.",
			mErrInvalid:         "Некорректный запрос.",
			mErrConflict:        "Сейчас это сделать нельзя.",
			mErrUnavailable:     "Сервис сейчас занят. Попробуйте через минуту.",
			mErrInternal:        "У нас что-то пошло не так. Попробуйте позже.",
			mErrCheckoutStart:   "Не удалось открыть страницу оплаты. Попробуйте позже или выберите другой способ.",
			mErrDeviceName:      "Такое имя не подходит: нужно от 1 до 24 букв, цифр, пробелов или знаков, и не имя вида device-3. Пришлите другое.",
			mErrDeviceNameTaken: "Так уже называется другое ваше устройство. Пришлите другое имя.",
			mClaimed:            "✅ Устройство %s теперь ваше. Доступ действует до %s.",
			mClaimedKeyKept: "✅ Устройство %s теперь ваше. Доступ действует до %s.\n\n" +
				"Устройство перенесено в бота без закрытого ключа, поэтому бот не может показать его конфигурацию. " +
				"Пользуйтесь той, что уже стоит на устройстве: она продолжает работать.",
			mClaimUsed:    "Эта ссылка уже использована: устройство принадлежит тому, кто открыл её первым. Если это были не вы, напишите в поддержку.",
			mClaimUnknown: "Эта ссылка недействительна. Проверьте, что открыли её целиком, или попросите новую у того, кто её прислал.",
			mNoClientKey: "Устройство %s перенесено в бота без закрытого ключа, поэтому его конфигурацию нельзя показать снова. " +
				"Конфигурация, которая уже стоит на устройстве, продолжает работать.",

			mAdminUsage:           "Команды администратора:\n/stats\n/user <id|@username>\n/grant <id|@username> <дней>\n/revoke <id|@username>\n/ban <id|@username>\n/unban <id|@username>\n/broadcast <текст>\n/refund <telegram_payment_charge_id>\n/promoadd <CODE> days=<n>|percent=<n>|fixed=<amount><CUR> …\n/promos\n/promooff <CODE>\n/panel",
			mAdminStats:           "📊 Статистика\n\n%s",
			mAdminRevenueNone:     "• нет",
			mStatsNow:             "Сейчас:\nВсего пользователей: %d\nДействующих подписок: %d (из них пробных: %d)\nДействующих подписок, которые закончатся в ближайшие 3 дня: %d\nОжидают оплаты (открытые заказы): %d\nАктивных устройств по серверам:\n%s",
			mStatsServer:          "• %s: %d",
			mStatsNodeDown:        " ⚠ узел не отвечает: новых устройств нет",
			mStatsDraining:        " (выводится: новых устройств нет)",
			mStatsWindow:          "%s:\nНовых пользователей: %d\nНачато пробных периодов: %d\nПробных периодов, после которых была оплата: %d из %d (%s)\nЗачислено платежей, без возвратов: %d\nНеудачных оплат (заказы отменены или истекли): %d\nВыручка за вычетом возвратов, по способам оплаты:\n%s",
			mStatsRevenue:         "• %s: %s",
			mStatsToday:           "Сегодня (с 00:00 UTC)",
			mStatsWeek:            "За 7 дней",
			mStatsMonth:           "За 30 дней",
			mAdminUser:            "Пользователь id %d (@%s, %s)\nЯзык: %s\nЗарегистрирован: %s\nЗаблокировал бота: %s\nЗабанен: %s",
			mAdminUserSub:         "• %s, %s, %s → %s, устройств: %d из %d",
			mAdminUserSubs:        "Подписки:\n%s",
			mAdminUserDevices:     "Устройства:\n%s",
			mAdminUserDevice:      "• %s, %s, создано %s, %s",
			mAdminUserPayments:    "Платежи (для платежа stars charge id после способа оплаты — то, что принимает /refund; остальные способы возвращают деньги в своём кабинете):\n%s",
			mAdminUserPayment:     "• %s %s: %s за %s, %s",
			mAdminPaid:            "зачислен %s",
			mAdminPaidRefunded:    "зачислен %s, возвращён %s",
			mAdminEarlier:         "(более ранних не показано: %d)",
			mPeerActive:           "активно",
			mPeerPaused:           "приостановлено до продления",
			mPeerRemoved:          "удалено",
			mAdminYes:             "да",
			mAdminNo:              "нет",
			mAdminNoUser:          "Нет такого пользователя.",
			mAdminGranted:         "Начислено %s пользователю id %d; действует до %s.",
			mAdminRevoked:         "Доступ пользователя id %d закрыт.",
			mAdminStale:           "Ничего не сделано: у id %d с тех пор новая подписка. Если её тоже нужно закрыть, отправьте команду ещё раз.",
			mBroadcastAlreadySent: "Эта рассылка уже отправлена.",
			mAdminBroadcastQueue:  "Рассылка поставлена в очередь. Кому: %s. Получателей: %d. Отчёт о доставке и блокировках придёт, когда она закончится.",
			mBroadcastPreview:     "Предпросмотр: следующее сообщение — рассылка в точности так, как её получат. Выберите, кому её отправить; до нажатия «Отправить» ничего не уходит.",
			mAudienceButton:       "%s: %d",
			mBtnSendBroadcast:     "📨 Отправить · %s: %d",
			mAudienceAll:          "Все",
			mAudienceActive:       "Действующая подписка",
			mAudienceExpired:      "Подписка закончилась",
			mAudienceNeverPaid:    "Ни разу не платили",
			mAdminBroadcastDone:   "Рассылка завершена.\nДоставлено: %d\nЗаблокировали бота: %d\nОшибок: %d",
			mAdminBroadcastOff:    "Рассылки в этом процессе не настроены (нужна очередь задач).",
			mAdminRefunded:        "Платёж %s пользователя id %d возвращён; снято %s.",
			mAdminRefundAgain:     "Платёж %s уже был возвращён.",
			mAdminRefundRefused:   "Telegram отказал в возврате: %s",
			mAdminFailed:          "Ошибка: %s",
			mAdminRevokeConfirm:   "Закрыть доступ пользователя id %d (@%s)? Его устройства сразу перестанут работать, оставшееся время не возвращается.",
			mBtnConfirmRevoke:     "Да, закрыть",
			mAdminCancelled:       "Отменено, ничего не изменилось.",
			mAccessRevoked:        "Администратор закрыл ваш доступ к VPN, устройства больше не подключаются. Если это ошибка, напишите %s.",
			mAdminBanConfirm:      "Заблокировать id %d (@%s)? Доступ закроется сразу, и до /unban ничего получить будет нельзя.",
			mBtnConfirmBan:        "Да, заблокировать",
			mAdminBanned:          "id %d заблокирован, доступ закрыт.",
			mAdminUnbanned:        "id %d разблокирован.",
			mAdminPanelLink:       "Ваша ссылка для входа в веб-панель, только для вас: она сработает один раз в течение 5 минут.\n%s",
			mAdminPanelOff:        "Веб-панель выключена: задайте PANEL_URL — её публичный адрес.",
			mBannedNotice:         "Администратор заблокировал ваш аккаунт, доступ к VPN закрыт. Если это ошибка, напишите %s.",

			mAdminWrong:         "%s\nКак писать: %s",
			mWrongNoUser:        "Укажите пользователя: Telegram id или @username.",
			mWrongUser:          "«%s» — не Telegram id и не @username.",
			mWrongNoDays:        "Укажите, сколько дней начислить.",
			mWrongDays:          "«%s» — не число дней: напишите целое число, например 30.",
			mWrongTooMany:       "Слов больше, чем нужно команде.",
			mWrongNoText:        "Напишите текст рассылки после команды.",
			mWrongNoCharge:      "Укажите charge id платежа: /user показывает его среди платежей пользователя.",
			mWrongCharge:        "«%s» — не charge id платежа.",
			mUsageUser:          "/user <id|@username>",
			mUsageGrant:         "/grant <id|@username> <дней>",
			mUsageRevoke:        "/revoke <id|@username>",
			mUsageBroadcast:     "/broadcast <текст>",
			mUsageRefund:        "/refund <telegram_payment_charge_id>",
			mUsageBan:           "/ban <id|@username>",
			mUsageUnban:         "/unban <id|@username>",
			mBtnInvite:          "👥 Пригласить друзей",
			mBtnPromo:           "🎟 Промокод",
			mCmdPromo:           "Ввести промокод",
			mCmdInvite:          "Пригласить друзей",
			mInvite:             "Ваша личная ссылка для приглашения друзей:\n%s",
			mInviteBoth:         "Когда пришедший по ней друг впервые оплатит подписку, вы получите %s, а он — %s.",
			mInviteReferrer:     "Когда пришедший по ней друг впервые оплатит подписку, вы получите %s.",
			mInviteInvited:      "Друг, пришедший по ней, получит %s при первой оплате.",
			mInviteStats:        "По вашей ссылке пришло: %s. Из них оплатили: %d. Вы заработали: %s.",
			mFriendsOne:         "%d друг",
			mFriendsFew:         "%d друга",
			mFriendsMany:        "%d друзей",
			mBonusReferrer:      "Приглашённый вами друг впервые оплатил подписку: вам начислено %s. Подписка действует до %s.",
			mBonusInvited:       "Спасибо, что пришли по ссылке друга: вам начислено ещё %s. Подписка действует до %s.",
			mPromoAsk:           "Пришлите промокод сообщением или напишите /promo КОД.",
			mReceiptAsk:         "По закону (54-ФЗ) к каждой оплате картой прилагается электронный чек. Пришлите сообщением email или номер телефона, куда его отправить. Спросим один раз и запомним для следующих оплат.",
			mReceiptSaved:       "Чеки будут приходить на %s. Выберите тариф ещё раз, чтобы оплатить.",
			mAutorenewAbout:     "Автопродление: карта, которой вы заплатите в следующий раз, сохраняется в ЮKassa, и за день до окончания доступа с неё списывается оплата того же тарифа; если списание не пройдёт, мы сообщим и повторять не будем. Отправьте /autorenew on, чтобы согласиться, и /autorenew off, чтобы отключить в любой момент.",
			mAutorenewOn:        "Автопродление включено: карта следующей оплаты будет сохранена, и за день до окончания доступа с неё будет списываться оплата. Отключить можно в любой момент кнопкой ниже или командой /autorenew off.",
			mAutorenewOff:       "Автопродление отключено: карта не будет сохранена, а сохранённая больше не будет списываться.",
			mBtnAutorenewOff:    "Отключить автопродление",
			mBtnSaveCardOff:     "☐ Продлевать автоматически с этой карты",
			mBtnSaveCardOn:      "☑ Продлевать автоматически с этой карты",
			mSaveCardTerms:      "Автопродление: ЮKassa сохранит карту, которой вы платите, и за день до окончания доступа с неё будет списываться оплата того же тарифа. Если списание не пройдёт, мы сообщим и повторять не будем. Отключить можно в любой момент в разделе «Моя подписка».",
			mRenewDeclined:      "Банк отклонил автоматическое продление на %s с сохранённой карты, деньги не списаны. Доступ действует до %s; чтобы не потерять его, оплатите вручную.",
			mRenewCardGone:      "Автоматическое продление на %s не списано: срок действия сохранённой карты истёк или разрешение на списания отозвано, поэтому автопродление с неё отключено. Деньги не списаны. Доступ действует до %s; оплатите вручную, а чтобы сохранить новую карту, отметьте «Продлевать автоматически» при оплате.",
			mRenewReleased:      "Автоматическое продление на %s с сохранённой карты не состоялось: банк не подтвердил списание, и платёж отменён, деньги не взяты; если сумма была заблокирована на карте, банк её разблокирует. Доступ действует до %s; чтобы не потерять его, оплатите вручную.",
			mRenewUnconfirmed:   "Банк уже сутки не подтверждает автоматическое продление на %s с сохранённой карты, поэтому мы перестали ждать и повторно списывать не будем. Если деньги всё же списаны, дни добавятся сами, как только банк подтвердит платёж; прежде чем платить вручную, проверьте выписку. Доступ действует до %s.",
			mBtnPayByHand:       "Оплатить вручную",
			mBonusTakenBack:     "Платёж приглашённого вами друга возвращён, поэтому бонус за него снят: на %s меньше. Подписка действует до %s.",
			mBonusTakenBackEnd:  "Платёж приглашённого вами друга возвращён, поэтому бонус за него снят: на %s меньше. Это был остаток вашего доступа, устройства больше не подключаются; выберите тариф, чтобы продолжить.",
			mErrReceiptContact:  "Это не похоже ни на email, ни на номер телефона с кодом страны (например, +7 900 123-45-67). Пришлите, пожалуйста, ещё раз.",
			mPromoWaiting:       "Ваш промокод %s даёт скидку %s на следующий заказ.",
			mPromoDays:          "Промокод %s принят: вам начислено %s. Подписка действует до %s.",
			mPromoIssued:        "Промокод принят: вам начислено %s доступа к VPN, до %s.",
			mPromoDiscount:      "Промокод %s принят: скидка %s на следующий заказ. Откройте «Купить», чтобы воспользоваться ею.",
			mPromoPlans:         "Действует на тарифы: %s.",
			mPromoPercent:       "%s%%",
			mErrPromoNotFound:   "Такого промокода нет. Проверьте написание и пришлите его ещё раз.",
			mErrPromoExpired:    "Срок действия этого промокода истёк, воспользоваться им больше нельзя.",
			mErrPromoDisabled:   "Этот промокод отключён, воспользоваться им больше нельзя.",
			mErrPromoUsedUp:     "Этот промокод уже израсходован: активаций не осталось.",
			mErrPromoRepeated:   "Вы уже воспользовались этим промокодом.",
			mErrPromoNewOnly:    "Этот промокод только для новых пользователей, которые ещё не платили.",
			mErrPromoPending:    "У вас уже есть скидка на следующий заказ. Сначала воспользуйтесь ею, потом вводите другой код.",
			mStatsRevenueExtra:  "Скидки по промокодам:\n%s\nПришли по реферальным ссылкам: %d\nРеферальных бонусов начислено и не отозвано: %d\nАктивировано промокодов: %d",
			mStatsPromos:        "Промокодов: %d, из них действуют сейчас: %d",
			mAdminPromoAdded:    "Промокод создан:\n%s",
			mAdminPromos:        "Промокоды:\n%s",
			mAdminPromoDisabled: "Промокод %s отключён: активировать его больше нельзя.",
			mPromoLine:          "• %s: %s; активаций: %s; на пользователя: %d%s",
			mPromoNewOnly:       "только новым",
			mPromoUntil:         "до %s",
			mPromoOff:           "отключён",
			mPromoExpired:       "истёк",
			mWrongPromo:         "Не удалось разобрать «%s».",
			mUsagePromoAdd:      "/promoadd <КОД> days=<дней> | percent=<процент> | fixed=<в копейках><ВАЛЮТА> [uses=<всего>] [per_user=<на человека>] [until=ГГГГ-ММ-ДД] [plans=<тариф>,<тариф>] [new]",
			mUsagePromoOff:      "/promooff <КОД>",

			mDeviceSeen:     "   подключалось %s · за месяц %s",
			mDeviceNever:    "   ещё не подключалось",
			mAgoNow:         "только что",
			mAgoMinutesOne:  "%d минуту назад",
			mAgoMinutesFew:  "%d минуты назад",
			mAgoMinutesMany: "%d минут назад",
			mAgoHoursOne:    "%d час назад",
			mAgoHoursFew:    "%d часа назад",
			mAgoHoursMany:   "%d часов назад",
			mAgoDaysOne:     "%d день назад",
			mAgoDaysFew:     "%d дня назад",
			mAgoDaysMany:    "%d дней назад",
			mBytesB:         "%s Б",
			mBytesKB:        "%s КБ",
			mBytesMB:        "%s МБ",
			mBytesGB:        "%s ГБ",
			mBytesTB:        "%s ТБ",
			mConnectionTip: "Устройство %s ещё не подключалось. Если VPN не работает:\n" +
				"1. Импортируйте файл конфигурации (или отсканируйте QR-код) в приложении WireGuard.\n" +
				"2. Включите туннель в приложении.\n" +
				"3. Всё равно не работает? Попробуйте другую сеть (мобильный интернет вместо Wi-Fi или наоборот) или другую локацию.",
			mStatsTop:                  "Больше всего трафика в этом месяце:\n%s",
			mStatsTopLine:              "• %s: %s",
			mOutageCredited:            "Извините: наш сервер в локации %s был недоступен %s. Мы добавили %s к вашей подписке, теперь она действует до %s.",
			mUnitDays:                  "дн",
			mUnitHours:                 "ч",
			mUnitMinutes:               "мин",
			mMethodStarsMonthly:        "⭐ Ежемесячно, с автопродлением · %s",
			mInvoiceTitleMonthly:       "VPN, ежемесячно",
			mInvoiceDescriptionMonthly: "VPN на WireGuard на %s, %s; продлевается автоматически каждые 30 дней, пока вы не отмените.",
			mSubscribeLink:             "Подписка: %s каждые %s, списываются автоматически в звёздах Telegram. Автопродление можно отключить в любой момент в «Моей подписке»; оплаченные дни останутся за вами.",
			mBtnSubscribe:              "⭐ Подписаться · %s",
			mRenewsOn:                  "Продлится автоматически %s",
			mRenewalOff:                "Автопродление отключено: после %s списаний не будет",
			mBtnRenewOff:               "⏹ Отключить автопродление",
			mBtnRenewOn:                "🔁 Включить автопродление",
			mRenewalCanceled:           "Автопродление отключено. Больше ничего не спишется; оплаченное время остаётся (текущий период заканчивается %s).",
			mRenewalResumed:            "Автопродление снова включено: следующее списание %s.",
			mRenewsSoon:                "Ваша подписка продлится автоматически %s, через %s: ничего делать не нужно. Чтобы остановить её, отключите автопродление в «Моей подписке».",
			mErrNoStarSub:              "У вас нет подписки с автопродлением.",
			mBtnGift:                   "🎁 Купить в подарок · %s",
			mGiftInvoiceTitle:          "Подарок: VPN на %s",
			mGiftInvoiceDescription:    "Подарок: VPN на WireGuard на %s, %s. Вы получите ссылку, чтобы передать её; дни получит тот, кто откроет её первым.",
			mGiftReady:                 "Подарок оплачен: VPN на %s. Отправьте эту ссылку тому, кому он предназначен; дни получит тот, кто откроет её первым, и сработает она один раз:\n%s",
			mGiftIssued:                "🎁 Вам подарили VPN на %s! Подписка действует до %s.",
			mQuotaWarn:                 "Вы использовали %s из %s трафика этого месяца. Когда лимит закончится, устройства приостановятся до %s или пока вы не докупите трафик.",
			mQuotaFull:                 "Трафик этого месяца (%s) закончился, устройства приостановлены до %s. Докупите трафик или выберите тариф побольше, чтобы включить их сейчас: настройки сохранятся.",
			mBtnLargerPlan:             "⬆️ Тариф побольше",
			mTopUpCredited:             "Оплата получена, спасибо! +%s трафика в этом месяце; приостановленные устройства снова работают.",
			mChooseTopUp:               "Пакет трафика: ещё %s в этом месяце.\nВыберите способ оплаты:",
			mTopUpInvoiceTitle:         "Трафик VPN +%s",
			mTopUpInvoiceDescription:   "Ещё %s трафика в этом месяце для вашего VPN на WireGuard.",
			mTopUpTitle:                "+%s",
			mStatsOverQuota:            "Превысили лимит трафика в этом месяце:\n%s",
			mStatsOverQuotaLine:        "• %s: %s из %s",
			mGiftRedeemed:              "🎁 Вам подарили VPN на %s! Теперь подписка действует до %s.",
			mErrGiftRedeemed:           "Этот подарок уже забрал тот, кто открыл ссылку раньше.",
			mErrGiftRefunded:           "Деньги за этот подарок вернули покупателю, и ссылка больше не действует.",
			mErrGiftNotFound:           "Эта ссылка на подарок не работает. Проверьте, что она скопирована целиком.",
		},
	}
}

// texts looks messages up in the catalogue.
type texts map[string]map[msg]string

// get returns key in lang with args formatted in, falling back to English
// for an unknown language.
func (t texts) get(lang string, key msg, args ...any) string {
	s, ok := t[lang][key]
	if !ok {
		s = t[langEN][key]
	}
	if len(args) == 0 {
		return s
	}
	return fmt.Sprintf(s, args...)
}

// days says "n days" with the language's plural form.
func (t texts) days(lang string, n int) string {
	return t.get(lang, pluralKey(lang, n, mDaysOne, mDaysFew, mDaysMany), n)
}

// friends says "n friends" with the language's plural form.
func (t texts) friends(lang string, n int) string {
	return t.get(lang, pluralKey(lang, n, mFriendsOne, mFriendsFew, mFriendsMany), n)
}

// upToDevices says "up to n devices" with the plural form the language
// wants after "up to" (Russian "до" takes the genitive).
func (t texts) upToDevices(lang string, n int) string {
	return t.get(lang, pluralKey(lang, n, mUpToDevicesOne, mUpToDevicesFew, mUpToDevicesMany), n)
}

// ago says how long ago t was, roughly: "just now", "5 minutes ago",
// "3 hours ago", "2 days ago", in the language's plural form.
func (t texts) ago(lang string, when, now time.Time) string {
	switch d := now.Sub(when); {
	case d < time.Minute:
		return t.get(lang, mAgoNow)
	case d < time.Hour:
		n := int(d / time.Minute)
		return t.get(lang, pluralKey(lang, n, mAgoMinutesOne, mAgoMinutesFew, mAgoMinutesMany), n)
	case d < 24*time.Hour:
		n := int(d / time.Hour)
		return t.get(lang, pluralKey(lang, n, mAgoHoursOne, mAgoHoursFew, mAgoHoursMany), n)
	default:
		n := int(d / (24 * time.Hour))
		return t.get(lang, pluralKey(lang, n, mAgoDaysOne, mAgoDaysFew, mAgoDaysMany), n)
	}
}

// span says a whole number of minutes in days, hours and minutes, short:
// "1 h 5 min", "2 д 3 ч" (abbreviated units take no plural form).
func (t texts) span(lang string, minutes int) string {
	var parts []string
	for _, u := range []struct {
		size int
		name msg
	}{{24 * 60, mUnitDays}, {60, mUnitHours}, {1, mUnitMinutes}} {
		if n := minutes / u.size; n > 0 {
			parts = append(parts, strconv.Itoa(n)+" "+t.get(lang, u.name))
			minutes -= n * u.size
		}
	}
	if len(parts) == 0 {
		return "0 " + t.get(lang, mUnitMinutes)
	}
	return strings.Join(parts, " ")
}

// bytes says an amount of traffic in the largest unit that keeps it at
// least 1, in powers of 1024 as WireGuard's tools count: "512 B",
// "1.5 MB", "23 GB" (one decimal below 10; a decimal comma in Russian).
func (t texts) bytes(lang string, n int64) string {
	units := []msg{mBytesB, mBytesKB, mBytesMB, mBytesGB, mBytesTB}
	v, u := float64(n), 0
	for v >= 1024 && u < len(units)-1 {
		v /= 1024
		u++
	}
	num := strconv.FormatFloat(v, 'f', 0, 64)
	if u > 0 && v < 10 {
		num = strconv.FormatFloat(v, 'f', 1, 64)
		if lang == langRU {
			num = strings.Replace(num, ".", ",", 1)
		}
	}
	return t.get(lang, units[u], num)
}

// pluralKey picks the CLDR cardinal form: Russian has one (1, 21, 31...),
// few (2-4, 22-24...) and many; English only one and other.
func pluralKey(lang string, n int, one, few, many msg) msg {
	if n < 0 {
		n = -n
	}
	if lang != langRU {
		if n == 1 {
			return one
		}
		return many
	}
	switch mod10, mod100 := n%10, n%100; {
	case mod10 == 1 && mod100 != 11:
		return one
	case mod10 >= 2 && mod10 <= 4 && (mod100 < 12 || mod100 > 14):
		return few
	default:
		return many
	}
}
