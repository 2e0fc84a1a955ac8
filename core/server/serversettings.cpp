// SPDX-License-Identifier: MIT
#include "serversettings.h"

using namespace Qt::StringLiterals;

namespace taskdeck {

QString ServerSettings::listenText() const
{
    return formatListenAddress(address, port);
}

QString formatListenAddress(const QHostAddress &address, quint16 port)
{
    const QString host = address.protocol() == QAbstractSocket::IPv6Protocol
        ? u'[' + address.toString() + u']' : address.toString();
    return host + u':' + QString::number(port);
}

std::optional<std::pair<QHostAddress, quint16>> parseListenAddress(const QString &text, QString *error)
{
    const QString trimmed = text.trimmed();
    auto fail = [&]() -> std::optional<std::pair<QHostAddress, quint16>> {
        if (error)
            *error = u"\"%1\" is not an address: expected ADDRESS:PORT such as 127.0.0.1:8470 "
                     u"or [::1]:8470"_s.arg(text);
        return std::nullopt;
    };
    QString host = trimmed;
    QString portText;
    if (trimmed.startsWith(u'[')) {
        const qsizetype close = trimmed.indexOf(u']');
        if (close < 0)
            return fail();
        host = trimmed.mid(1, close - 1);
        const QString rest = trimmed.mid(close + 1);
        if (!rest.isEmpty()) {
            if (!rest.startsWith(u':'))
                return fail();
            portText = rest.mid(1);
        }
    } else if (trimmed.count(u':') == 1) {
        const qsizetype colon = trimmed.indexOf(u':');
        host = trimmed.left(colon);
        portText = trimmed.mid(colon + 1);
    }
    if (host == u"localhost")
        host = u"127.0.0.1"_s;
    QHostAddress address;
    if (host.isEmpty() || !address.setAddress(host))
        return fail();
    quint16 port = 8470;
    if (!portText.isNull()) {
        bool ok = false;
        const uint value = portText.toUInt(&ok);
        if (!ok || value > 65535)
            return fail();
        port = quint16(value);
    }
    return std::pair{address, port};
}

} // namespace taskdeck
