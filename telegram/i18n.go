package telegram

import (
	"fmt"
	"strings"
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
	mWelcome        msg = "welcome"
	mMenu           msg = "menu"
	mBtnTrial       msg = "btn_trial"
	mBtnBuy         msg = "btn_buy"
	mBtnSub         msg = "btn_subscription"
	mBtnHelp        msg = "btn_help"
	mBtnLanguage    msg = "btn_language"
	mBtnBack        msg = "btn_back"
	mHelp           msg = "help"
	mPaySupport     msg = "pay_support"
	mSupportDefault msg = "support_default"
	mChooseLanguage msg = "choose_language"
	mLanguageName   msg = "language_name"
	mLanguageSet    msg = "language_set"
	mOutdated       msg = "outdated_button"
	mBusy           msg = "busy"
	mCmdStart       msg = "cmd_start"
	mCmdHelp        msg = "cmd_help"
	mCmdLang        msg = "cmd_lang"
	mCmdPaySupport  msg = "cmd_paysupport"

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
	mBtnPay             msg = "btn_pay"
	mPaidNew            msg = "paid_new"
	mPaidExtended       msg = "paid_extended"
	mPaymentProblem     msg = "payment_problem"
	mRefundedUntil      msg = "refunded_until"
	mRefundedEnded      msg = "refunded_ended"
	mGranted            msg = "granted"

	// My subscription and devices.
	mNoSubscription    msg = "no_subscription"
	mSubscription      msg = "subscription"
	mStatusActive      msg = "status_active"
	mStatusExpired     msg = "status_expired"
	mStatusRevoked     msg = "status_revoked"
	mPlanTrial         msg = "plan_trial"
	mPlanGift          msg = "plan_gift"
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

	// What a failed request tells the user (see userError).
	mErrTrialUsed     msg = "err_trial_used"
	mErrHasAccess     msg = "err_has_access"
	mErrTrialOff      msg = "err_trial_disabled"
	mErrDeviceLimit   msg = "err_device_limit"
	mErrNoSub         msg = "err_no_subscription"
	mErrNotFound      msg = "err_not_found"
	mErrNoAddress     msg = "err_no_free_address"
	mErrBanned        msg = "err_banned"
	mErrApplyFailed   msg = "err_apply_failed"
	mErrOrderClosed   msg = "err_order_closed"
	mErrOrderGone     msg = "err_order_gone"
	mErrNoPrice       msg = "err_no_price"
	mErrMismatch      msg = "err_payment_mismatch"
	mErrInvalid       msg = "err_invalid"
	mErrConflict      msg = "err_conflict"
	mErrUnavailable   msg = "err_unavailable"
	mErrInternal      msg = "err_internal"
	mErrCheckoutStart msg = "err_checkout_start"

	// Admin commands.
	mAdminUsage          msg = "admin_usage"
	mAdminStats          msg = "admin_stats"
	mAdminRevenueNone    msg = "admin_revenue_none"
	mAdminUser           msg = "admin_user"
	mAdminUserSub        msg = "admin_user_sub"
	mAdminUserNoSub      msg = "admin_user_no_sub"
	mAdminYes            msg = "admin_yes"
	mAdminNo             msg = "admin_no"
	mAdminNoUser         msg = "admin_no_user"
	mAdminGranted        msg = "admin_granted"
	mAdminRevoked        msg = "admin_revoked"
	mAdminBroadcastQueue msg = "admin_broadcast_queued"
	mAdminBroadcastDone  msg = "admin_broadcast_done"
	mAdminBroadcastBusy  msg = "admin_broadcast_busy"
	mAdminRefunded       msg = "admin_refunded"
	mAdminRefundAgain    msg = "admin_refund_again"
	mAdminRefundRefused  msg = "admin_refund_refused"
	mAdminFailed         msg = "admin_failed"
)

// catalogue is every text in every language. It is built fresh by New, so
// the package has no mutable state; texts are plain (no parse mode), so
// names and admin input need no escaping.
func catalogue() map[string]map[msg]string {
	return map[string]map[msg]string{
		langEN: {
			mWelcome:        "Hi, %s! This bot gives you a fast, private WireGuard VPN.\n\nTake the free trial or choose a plan below.",
			mMenu:           "Choose an action:",
			mBtnTrial:       "🎁 Free trial",
			mBtnBuy:         "💳 Buy",
			mBtnSub:         "📱 My subscription",
			mBtnHelp:        "❓ Help",
			mBtnLanguage:    "🌐 Language",
			mBtnBack:        "« Back",
			mHelp:           "How it works:\n• Free trial: %s of VPN on one device, once.\n• Buy: choose a plan and pay with Telegram Stars or another method.\n• My subscription: expiry date, devices, configs and QR codes.\n\nCommands: /start opens the menu, /lang changes the language, /paysupport helps with payments.\n\nSupport: %s",
			mPaySupport:     "Questions about a payment or a refund? Write to %s and include the date of the payment; for Telegram Stars also the transaction ID from the receipt.",
			mSupportDefault: "the bot's administrator",
			mChooseLanguage: "Choose your language:",
			mLanguageName:   "English",
			mLanguageSet:    "Language: English.",
			mOutdated:       "This button is out of date.",
			mBusy:           "⏳ Working on it…",
			mCmdStart:       "Main menu",
			mCmdHelp:        "How it works and support",
			mCmdLang:        "Change the language",
			mCmdPaySupport:  "Help with payments and refunds",

			mDaysOne:         "%d day",
			mDaysFew:         "%d days",
			mDaysMany:        "%d days",
			mUpToDevicesOne:  "up to %d device",
			mUpToDevicesFew:  "up to %d devices",
			mUpToDevicesMany: "up to %d devices",

			mTrialIssued:   "Your free trial is active until %s.",
			mConfigCaption: "WireGuard config for %s",
			mQRCaption:     "QR code for %s: scan it in the WireGuard app.",
			mInstallSteps:  "How to connect:\n📱 Phone: install WireGuard (App Store or Google Play), tap “+”, choose “Scan from QR code” and scan the picture above.\n💻 Computer: install WireGuard from wireguard.com/install, choose “Import tunnel(s) from file” and pick %s.\nThen switch the tunnel on.\n\nValid until %s. Keep the config private: whoever has it uses your device slot.",
			mApplyPending:  "The VPN server is still taking your device on; if it does not connect at once, try again in a minute.",

			mPlans:              "Choose a plan:\n\n%s",
			mPlanLine:           "• %s, %s: %s",
			mPlanButton:         "%s · %s",
			mChooseMethod:       "Plan: %s, %s.\nChoose how to pay:",
			mMethodStars:        "⭐ Telegram Stars · %s",
			mMethodButton:       "%s · %s",
			mInvoiceTitle:       "VPN for %s",
			mInvoiceDescription: "WireGuard VPN for %s on %s.",
			mPayLink:            "To pay %s with %s, use the button below. The link is valid for 24 hours; your access starts as soon as the payment is confirmed.",
			mBtnPay:             "Pay %s",
			mPaidNew:            "Payment received, thank you! Your subscription is active until %s. Your config follows.",
			mPaidExtended:       "Payment received, thank you! Your subscription is extended until %s.",
			mPaymentProblem:     "We received your payment but could not apply it automatically. Please write to %s and quote this ID: %s",
			mRefundedUntil:      "Your payment was refunded. Your subscription now ends on %s.",
			mRefundedEnded:      "Your payment was refunded and your access has ended.",
			mGranted:            "You received %s of VPN access, valid until %s.",

			mNoSubscription:    "You have no subscription yet. Take the free trial or choose a plan.",
			mSubscription:      "Subscription: %s\nPlan: %s\nValid until: %s\nDays left: %d\nDevices: %d of %d\n%s",
			mStatusActive:      "active ✅",
			mStatusExpired:     "expired",
			mStatusRevoked:     "ended",
			mPlanTrial:         "free trial",
			mPlanGift:          "gift",
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

			mErrTrialUsed:     "You have already used your free trial. Choose a plan to keep using the VPN.",
			mErrHasAccess:     "You already have an active subscription, so no trial is needed. Open “My subscription” for your config.",
			mErrTrialOff:      "The free trial is not available right now.",
			mErrDeviceLimit:   "All device slots of your plan are in use. Remove a device or choose a bigger plan.",
			mErrNoSub:         "You have no active subscription. Take the free trial or choose a plan.",
			mErrNotFound:      "Not found.",
			mErrNoAddress:     "The server is full right now. Please try again later.",
			mErrBanned:        "Your account is blocked. Write to support if you think this is a mistake.",
			mErrApplyFailed:   "The VPN server could not take the change just now. Nothing was used up; please try again in a minute.",
			mErrOrderClosed:   "This order is already closed. Open “Buy” to create a new one.",
			mErrOrderGone:     "This order cannot be paid. Open “Buy” to create a new one.",
			mErrNoPrice:       "This plan cannot be paid this way.",
			mErrMismatch:      "The payment does not match the order.",
			mErrInvalid:       "That request is not valid.",
			mErrConflict:      "That cannot be done right now.",
			mErrUnavailable:   "The service is busy right now. Please try again in a minute.",
			mErrInternal:      "Something went wrong on our side. Please try again later.",
			mErrCheckoutStart: "The payment page could not be opened. Please try again later or choose another method.",

			mAdminUsage:          "Admin commands:\n/stats\n/user <id|@username>\n/grant <id|@username> <days>\n/revoke <id|@username>\n/broadcast <text>\n/refund <telegram_payment_charge_id>",
			mAdminStats:          "Users: %d\nActive subscriptions: %d\nTrials: %d\nActive devices: %d\nRevenue:\n%s",
			mAdminRevenueNone:    "none yet",
			mAdminUser:           "User %d (@%s, %s)\nLanguage: %s\nRegistered: %s\nBlocked the bot: %s\nBanned: %s\n%s",
			mAdminUserSub:        "Subscription: %s, plan %s, until %s, %d of %d devices",
			mAdminUserNoSub:      "No subscription.",
			mAdminYes:            "yes",
			mAdminNo:             "no",
			mAdminNoUser:         "No such user.",
			mAdminGranted:        "Granted %d days to %d; valid until %s.",
			mAdminRevoked:        "Access of %d revoked.",
			mAdminBroadcastQueue: "Broadcast queued for %d users.",
			mAdminBroadcastDone:  "Broadcast finished: %d delivered, %d blocked the bot, %d failed.",
			mAdminBroadcastBusy:  "A broadcast is already running; wait for its report.",
			mAdminRefunded:       "Refunded payment %s of user %d; %d days taken back.",
			mAdminRefundAgain:    "Payment %s was already refunded.",
			mAdminRefundRefused:  "Telegram refused the refund: %s",
			mAdminFailed:         "Failed: %s",
		},
		langRU: {
			mWelcome:        "Привет, %s! Этот бот даёт быстрый и приватный VPN на WireGuard.\n\nВозьмите бесплатный пробный период или выберите тариф ниже.",
			mMenu:           "Выберите действие:",
			mBtnTrial:       "🎁 Пробный период",
			mBtnBuy:         "💳 Купить",
			mBtnSub:         "📱 Моя подписка",
			mBtnHelp:        "❓ Помощь",
			mBtnLanguage:    "🌐 Язык",
			mBtnBack:        "« Назад",
			mHelp:           "Как это работает:\n• Пробный период: %s VPN на одном устройстве, один раз.\n• Купить: выберите тариф и оплатите звёздами Telegram или другим способом.\n• Моя подписка: срок, устройства, конфиги и QR-коды.\n\nКоманды: /start открывает меню, /lang меняет язык, /paysupport помогает с оплатой.\n\nПоддержка: %s",
			mPaySupport:     "Вопрос об оплате или возврате? Напишите %s и укажите дату платежа, а для звёзд Telegram ещё и ID транзакции из чека.",
			mSupportDefault: "администратору бота",
			mChooseLanguage: "Выберите язык:",
			mLanguageName:   "Русский",
			mLanguageSet:    "Язык: русский.",
			mOutdated:       "Эта кнопка устарела.",
			mBusy:           "⏳ Уже делаем…",
			mCmdStart:       "Главное меню",
			mCmdHelp:        "Как это работает и поддержка",
			mCmdLang:        "Сменить язык",
			mCmdPaySupport:  "Помощь с оплатой и возвратом",

			mDaysOne:         "%d день",
			mDaysFew:         "%d дня",
			mDaysMany:        "%d дней",
			mUpToDevicesOne:  "до %d устройства",
			mUpToDevicesFew:  "до %d устройств",
			mUpToDevicesMany: "до %d устройств",

			mTrialIssued:   "Пробный период действует до %s.",
			mConfigCaption: "Конфиг WireGuard для %s",
			mQRCaption:     "QR-код для %s: отсканируйте его в приложении WireGuard.",
			mInstallSteps:  "Как подключиться:\n📱 Телефон: установите WireGuard (App Store или Google Play), нажмите «+», выберите «Сканировать QR-код» и наведите камеру на картинку выше.\n💻 Компьютер: установите WireGuard с wireguard.com/install, выберите «Импорт туннелей из файла» и укажите %s.\nЗатем включите туннель.\n\nДействует до %s. Не передавайте конфиг другим: по нему занимают ваше место для устройства.",
			mApplyPending:  "VPN-сервер ещё добавляет ваше устройство; если сразу не подключится, попробуйте через минуту.",

			mPlans:              "Выберите тариф:\n\n%s",
			mPlanLine:           "• %s, %s: %s",
			mPlanButton:         "%s · %s",
			mChooseMethod:       "Тариф: %s, %s.\nВыберите способ оплаты:",
			mMethodStars:        "⭐ Звёзды Telegram · %s",
			mMethodButton:       "%s · %s",
			mInvoiceTitle:       "VPN на %s",
			mInvoiceDescription: "VPN на WireGuard на %s, %s.",
			mPayLink:            "Чтобы оплатить %s через %s, нажмите кнопку ниже. Ссылка действует 24 часа; доступ откроется, как только платёж подтвердится.",
			mBtnPay:             "Оплатить %s",
			mPaidNew:            "Оплата получена, спасибо! Подписка действует до %s. Конфиг ниже.",
			mPaidExtended:       "Оплата получена, спасибо! Подписка продлена до %s.",
			mPaymentProblem:     "Мы получили ваш платёж, но не смогли применить его автоматически. Напишите, пожалуйста, %s и укажите этот ID: %s",
			mRefundedUntil:      "Ваш платёж возвращён. Подписка теперь заканчивается %s.",
			mRefundedEnded:      "Ваш платёж возвращён, доступ закрыт.",
			mGranted:            "Вам начислено %s доступа к VPN, до %s.",

			mNoSubscription:    "У вас пока нет подписки. Возьмите пробный период или выберите тариф.",
			mSubscription:      "Подписка: %s\nТариф: %s\nДействует до: %s\nОсталось дней: %d\nУстройства: %d из %d\n%s",
			mStatusActive:      "активна ✅",
			mStatusExpired:     "истекла",
			mStatusRevoked:     "закрыта",
			mPlanTrial:         "пробный период",
			mPlanGift:          "подарок",
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

			mErrTrialUsed:     "Вы уже использовали пробный период. Выберите тариф, чтобы продолжить пользоваться VPN.",
			mErrHasAccess:     "У вас уже есть активная подписка, пробный период не нужен. Конфиг в разделе «Моя подписка».",
			mErrTrialOff:      "Пробный период сейчас недоступен.",
			mErrDeviceLimit:   "Все места для устройств по вашему тарифу заняты. Удалите устройство или выберите тариф побольше.",
			mErrNoSub:         "У вас нет активной подписки. Возьмите пробный период или выберите тариф.",
			mErrNotFound:      "Не найдено.",
			mErrNoAddress:     "Сервер сейчас заполнен. Попробуйте позже.",
			mErrBanned:        "Ваш аккаунт заблокирован. Если это ошибка, напишите в поддержку.",
			mErrApplyFailed:   "VPN-сервер сейчас не смог принять изменение. Ничего не потрачено, попробуйте через минуту.",
			mErrOrderClosed:   "Этот заказ уже закрыт. Откройте «Купить» и создайте новый.",
			mErrOrderGone:     "Этот заказ нельзя оплатить. Откройте «Купить» и создайте новый.",
			mErrNoPrice:       "Этот тариф нельзя оплатить таким способом.",
			mErrMismatch:      "Платёж не совпадает с заказом.",
			mErrInvalid:       "Некорректный запрос.",
			mErrConflict:      "Сейчас это сделать нельзя.",
			mErrUnavailable:   "Сервис сейчас занят. Попробуйте через минуту.",
			mErrInternal:      "У нас что-то пошло не так. Попробуйте позже.",
			mErrCheckoutStart: "Не удалось открыть страницу оплаты. Попробуйте позже или выберите другой способ.",

			mAdminUsage:          "Команды администратора:\n/stats\n/user <id|@username>\n/grant <id|@username> <дней>\n/revoke <id|@username>\n/broadcast <текст>\n/refund <telegram_payment_charge_id>",
			mAdminStats:          "Пользователей: %d\nАктивных подписок: %d\nПробных периодов: %d\nАктивных устройств: %d\nВыручка:\n%s",
			mAdminRevenueNone:    "пока нет",
			mAdminUser:           "Пользователь %d (@%s, %s)\nЯзык: %s\nЗарегистрирован: %s\nЗаблокировал бота: %s\nЗабанен: %s\n%s",
			mAdminUserSub:        "Подписка: %s, тариф %s, до %s, устройств %d из %d",
			mAdminUserNoSub:      "Подписки нет.",
			mAdminYes:            "да",
			mAdminNo:             "нет",
			mAdminNoUser:         "Нет такого пользователя.",
			mAdminGranted:        "Начислено %d дней пользователю %d; действует до %s.",
			mAdminRevoked:        "Доступ пользователя %d закрыт.",
			mAdminBroadcastQueue: "Рассылка поставлена в очередь: %d получателей.",
			mAdminBroadcastDone:  "Рассылка завершена: доставлено %d, заблокировали бота %d, ошибок %d.",
			mAdminBroadcastBusy:  "Рассылка уже идёт; дождитесь отчёта.",
			mAdminRefunded:       "Платёж %s пользователя %d возвращён; снято дней: %d.",
			mAdminRefundAgain:    "Платёж %s уже был возвращён.",
			mAdminRefundRefused:  "Telegram отказал в возврате: %s",
			mAdminFailed:         "Ошибка: %s",
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

// upToDevices says "up to n devices" with the plural form the language
// wants after "up to" (Russian "до" takes the genitive).
func (t texts) upToDevices(lang string, n int) string {
	return t.get(lang, pluralKey(lang, n, mUpToDevicesOne, mUpToDevicesFew, mUpToDevicesMany), n)
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
