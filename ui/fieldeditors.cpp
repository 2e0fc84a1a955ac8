// SPDX-License-Identifier: MIT
#include "fieldeditors.h"

#include "messagebanner.h"

#include <QCalendarWidget>
#include <QCheckBox>
#include <QComboBox>
#include <QDateTimeEdit>
#include <QDragEnterEvent>
#include <QDropEvent>
#include <QFileDialog>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QJsonArray>
#include <QKeyEvent>
#include <QLineEdit>
#include <QListWidget>
#include <QLocale>
#include <QMimeData>
#include <QPainter>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QRegularExpression>
#include <QToolButton>
#include <QValidator>

#include <limits>

using namespace Qt::StringLiterals;

namespace taskdeck::ui {

namespace {

constexpr int FrameWidth = 2;

QString textOf(const QJsonValue &v)
{
    if (v.isString())
        return v.toString();
    if (v.isBool())
        return v.toBool() ? u"true"_s : u"false"_s;
    if (v.isDouble()) {
        if (const std::optional<qint64> i = exactInteger(v))
            return QString::number(*i);
        return QString::number(v.toDouble(), 'g', QLocale::FloatingPointShortest);
    }
    return QString();
}

// Accepts what could still become a qint64 as the user types; the range is checked live
// by the editor so that typing is never silently refused.
class IntegerValidator final : public QValidator
{
public:
    using QValidator::QValidator;

    State validate(QString &input, int &pos) const override
    {
        Q_UNUSED(pos)
        static const QRegularExpression partial(u"^\\s*[+-]?[0-9]*\\s*$"_s);
        if (!partial.match(input).hasMatch())
            return Invalid;
        bool ok = false;
        input.trimmed().toLongLong(&ok);
        return ok ? Acceptable : Intermediate;
    }
};

// Text, Integer, Number, Secret: a line edit.
class LineFieldEditor : public FieldEditor
{
public:
    LineFieldEditor(const Field &f, QWidget *parent)
        : FieldEditor(f, parent)
    {
        m_edit = new QLineEdit(this);
        m_edit->setPlaceholderText(f.placeholder);
        m_layout = new QHBoxLayout(this);
        m_layout->setContentsMargins(FrameWidth, FrameWidth, FrameWidth, FrameWidth);
        m_layout->setSpacing(4);
        m_layout->addWidget(m_edit, 1);
        connect(m_edit, &QLineEdit::textEdited, this, [this] { emitEdited(); });
    }

    QWidget *input() const override { return m_edit; }

    QJsonValue value() const override
    {
        const QString text = m_edit->text();
        if (text.isEmpty())
            return QJsonValue::Undefined;
        return QJsonValue(text);
    }

    void setValue(const QJsonValue &v) override
    {
        m_settingValue = true;
        m_edit->setText(textOf(v));
        m_settingValue = false;
    }

    QString liveError() const override
    {
        const QJsonValue v = value();
        return v.isUndefined() ? QString() : coerceError(v);
    }

protected:
    QLineEdit *m_edit = nullptr;
    QHBoxLayout *m_layout = nullptr;
};

class TextEditor final : public LineFieldEditor
{
public:
    TextEditor(const Field &f, QWidget *parent)
        : LineFieldEditor(f, parent)
    {
        if (f.max && *f.max >= 0 && *f.max < 32767)
            m_edit->setMaxLength(static_cast<int>(*f.max));
        setValue(f.defaultValue);
    }
};

class IntegerEditor final : public LineFieldEditor
{
public:
    IntegerEditor(const Field &f, QWidget *parent)
        : LineFieldEditor(f, parent)
    {
        m_edit->setValidator(new IntegerValidator(m_edit));
        m_edit->setAlignment(Qt::AlignRight | Qt::AlignVCenter);
        m_edit->installEventFilter(this);
        if (m_edit->placeholderText().isEmpty())
            m_edit->setPlaceholderText(rangeHint(f));
        setValue(f.defaultValue);
    }

    QJsonValue value() const override
    {
        const QString text = m_edit->text().trimmed();
        if (text.isEmpty())
            return QJsonValue::Undefined;
        bool ok = false;
        const qint64 i = text.toLongLong(&ok);
        return ok ? QJsonValue(i) : QJsonValue(text);
    }

protected:
    bool eventFilter(QObject *watched, QEvent *event) override
    {
        // Up and Down step the value like a spin box would, without leaving qint64.
        if (watched == m_edit && event->type() == QEvent::KeyPress) {
            const int key = static_cast<QKeyEvent *>(event)->key();
            if (key == Qt::Key_Up || key == Qt::Key_Down) {
                step(key == Qt::Key_Up ? 1 : -1);
                return true;
            }
        }
        return LineFieldEditor::eventFilter(watched, event);
    }

private:
    static QString rangeHint(const Field &f)
    {
        if (f.min && f.max) {
            return FieldEditor::tr("%1 to %2")
                .arg(QString::number(*f.min, 'f', 0), QString::number(*f.max, 'f', 0));
        }
        return QString();
    }

    void step(int direction)
    {
        bool ok = false;
        qint64 current = m_edit->text().trimmed().toLongLong(&ok);
        if (!ok)
            current = field().min ? static_cast<qint64>(*field().min) : 0;
        else if (direction > 0 && current < std::numeric_limits<qint64>::max())
            ++current;
        else if (direction < 0 && current > std::numeric_limits<qint64>::min())
            --current;
        m_edit->setText(QString::number(current));
        emitEdited();
    }
};

class NumberEditor final : public LineFieldEditor
{
public:
    NumberEditor(const Field &f, QWidget *parent)
        : LineFieldEditor(f, parent)
    {
        m_edit->setAlignment(Qt::AlignRight | Qt::AlignVCenter);
        setValue(f.defaultValue);
    }

    QJsonValue value() const override
    {
        const QString text = m_edit->text().trimmed();
        if (text.isEmpty())
            return QJsonValue::Undefined;
        // The user's own notation first ("1,5" in German), then the C locale's.
        bool ok = false;
        QLocale c = QLocale::c();
        c.setNumberOptions(QLocale::RejectGroupSeparator);
        double d = c.toDouble(text, &ok);
        if (!ok)
            d = QLocale().toDouble(text, &ok);
        return ok ? QJsonValue(d) : QJsonValue(text);
    }
};

class SecretEditor final : public LineFieldEditor
{
public:
    SecretEditor(const Field &f, QWidget *parent)
        : LineFieldEditor(f, parent)
    {
        m_edit->setEchoMode(QLineEdit::Password);
        m_edit->setInputMethodHints(Qt::ImhHiddenText | Qt::ImhNoPredictiveText
                                    | Qt::ImhSensitiveData);
        m_reveal = new QToolButton(this);
        m_reveal->setCheckable(true);
        m_reveal->setText(FieldEditor::tr("Show"));
        m_reveal->setAccessibleName(FieldEditor::tr("Show %1").arg(f.label()));
        m_reveal->setToolTip(FieldEditor::tr("Show or hide the typed text"));
        connect(m_reveal, &QToolButton::toggled, this, [this](bool shown) {
            m_edit->setEchoMode(shown ? QLineEdit::Normal : QLineEdit::Password);
            m_reveal->setText(shown ? FieldEditor::tr("Hide") : FieldEditor::tr("Show"));
        });
        m_layout->addWidget(m_reveal);
        if (!f.defaultValue.isUndefined() && !f.defaultValue.isNull())
            m_edit->setPlaceholderText(secretPlaceholderForDefault());
    }

    QList<QWidget *> focusWidgets() const override { return {m_edit, m_reveal}; }

    void setValue(const QJsonValue &v) override
    {
        // A stored argument is redacted: the value itself is never known here, only that
        // one was given, so the user is asked for it again.
        m_settingValue = true;
        m_edit->clear();
        m_settingValue = false;
        const bool given = !v.isUndefined() && !v.isNull() && !textOf(v).isEmpty();
        if (given)
            m_edit->setPlaceholderText(secretPlaceholderAfterRerun());
        else if (!field().defaultValue.isUndefined() && !field().defaultValue.isNull())
            m_edit->setPlaceholderText(secretPlaceholderForDefault());
        else
            m_edit->setPlaceholderText(field().placeholder);
    }

private:
    QToolButton *m_reveal = nullptr;
};

class FileEditor final : public LineFieldEditor
{
public:
    FileEditor(const Field &f, QWidget *parent)
        : LineFieldEditor(f, parent)
    {
        if (m_edit->placeholderText().isEmpty())
            m_edit->setPlaceholderText(FieldEditor::tr("Path to a file, or drop one here"));
        m_browse = new QPushButton(FieldEditor::tr("Browse…"), this);
        m_browse->setAccessibleName(FieldEditor::tr("Browse for %1").arg(f.label()));
        connect(m_browse, &QPushButton::clicked, this, &FileEditor::browse);
        m_layout->addWidget(m_browse);
        setAcceptDrops(true);
        m_edit->installEventFilter(this);
        setValue(f.defaultValue);
    }

    QList<QWidget *> focusWidgets() const override { return {m_edit, m_browse}; }

    // Checking that the file exists waits for the whole form: a half-typed path is not wrong.
    QString liveError() const override { return QString(); }

protected:
    bool eventFilter(QObject *watched, QEvent *event) override
    {
        if (watched == m_edit) {
            switch (event->type()) {
            case QEvent::DragEnter:
                dragEnterEvent(static_cast<QDragEnterEvent *>(event));
                return true;
            case QEvent::DragMove:
                if (droppedPath(static_cast<QDropEvent *>(event)->mimeData()).isEmpty())
                    event->ignore();
                else
                    static_cast<QDropEvent *>(event)->acceptProposedAction();
                return true;
            case QEvent::Drop:
                dropEvent(static_cast<QDropEvent *>(event));
                return true;
            default:
                break;
            }
        }
        return LineFieldEditor::eventFilter(watched, event);
    }

    void dragEnterEvent(QDragEnterEvent *event) override
    {
        if (droppedPath(event->mimeData()).isEmpty())
            event->ignore();
        else
            event->acceptProposedAction();
    }

    void dropEvent(QDropEvent *event) override
    {
        const QString path = droppedPath(event->mimeData());
        if (path.isEmpty()) {
            event->ignore();
            return;
        }
        event->acceptProposedAction();
        m_edit->setText(path);
        m_edit->setFocus();
        emitEdited();
    }

private:
    static QString droppedPath(const QMimeData *mime)
    {
        if (!mime || !mime->hasUrls())
            return QString();
        const QList<QUrl> urls = mime->urls();
        return urls.size() == 1 && urls.first().isLocalFile() ? urls.first().toLocalFile()
                                                              : QString();
    }

    void browse()
    {
        // Not the static getter: the dialog must not spin a nested event loop.
        auto *dialog = new QFileDialog(window(), FieldEditor::tr("Choose %1").arg(field().label()));
        dialog->setAttribute(Qt::WA_DeleteOnClose);
        dialog->setFileMode(QFileDialog::ExistingFile);
        const QFileInfo current(m_edit->text());
        if (!m_edit->text().isEmpty())
            dialog->setDirectory(current.absolutePath());
        connect(dialog, &QFileDialog::fileSelected, this, [this](const QString &file) {
            m_edit->setText(file);
            emitEdited();
        });
        dialog->open();
    }

    QPushButton *m_browse = nullptr;
};

class TextareaEditor final : public FieldEditor
{
public:
    TextareaEditor(const Field &f, QWidget *parent)
        : FieldEditor(f, parent)
    {
        m_edit = new QPlainTextEdit(this);
        m_edit->setTabChangesFocus(true);
        m_edit->setPlaceholderText(f.placeholder);
        const int lines = 5;
        m_edit->setFixedHeight(m_edit->fontMetrics().lineSpacing() * lines
                               + 2 * (m_edit->frameWidth() + 4));
        auto *layout = new QHBoxLayout(this);
        layout->setContentsMargins(FrameWidth, FrameWidth, FrameWidth, FrameWidth);
        layout->addWidget(m_edit);
        setValue(f.defaultValue);
        connect(m_edit, &QPlainTextEdit::textChanged, this, [this] { emitEdited(); });
    }

    QWidget *input() const override { return m_edit; }

    QJsonValue value() const override
    {
        const QString text = m_edit->toPlainText();
        return text.isEmpty() ? QJsonValue(QJsonValue::Undefined) : QJsonValue(text);
    }

    void setValue(const QJsonValue &v) override
    {
        m_settingValue = true;
        m_edit->setPlainText(textOf(v));
        m_settingValue = false;
    }

    QString liveError() const override
    {
        const QJsonValue v = value();
        return v.isUndefined() ? QString() : coerceError(v);
    }

private:
    QPlainTextEdit *m_edit = nullptr;
};

class BoolEditor final : public FieldEditor
{
public:
    BoolEditor(const Field &f, QWidget *parent)
        : FieldEditor(f, parent)
    {
        m_check = new QCheckBox(this);
        auto *layout = new QHBoxLayout(this);
        layout->setContentsMargins(FrameWidth, FrameWidth, FrameWidth, FrameWidth);
        layout->addWidget(m_check);
        layout->addStretch();
        setValue(f.defaultValue);
        connect(m_check, &QCheckBox::toggled, this, [this] { emitEdited(); });
    }

    QWidget *input() const override { return m_check; }
    // A check box always holds a value: unchecked is false, not "not given".
    QJsonValue value() const override { return QJsonValue(m_check->isChecked()); }

    void setValue(const QJsonValue &v) override
    {
        QString error;
        const std::optional<QJsonValue> coerced =
            v.isUndefined() || v.isNull() ? std::nullopt : field().coerce(v, &error);
        m_settingValue = true;
        m_check->setChecked(coerced && coerced->toBool());
        m_settingValue = false;
    }

private:
    QCheckBox *m_check = nullptr;
};

class SelectEditor final : public FieldEditor
{
public:
    SelectEditor(const Field &f, QWidget *parent)
        : FieldEditor(f, parent)
    {
        m_combo = new QComboBox(this);
        m_combo->setSizeAdjustPolicy(QComboBox::AdjustToContents);
        // Without a default nothing is chosen for the user: an empty entry stands first.
        if (f.defaultValue.isUndefined() || f.defaultValue.isNull())
            m_combo->addItem(f.required ? FieldEditor::tr("Choose…") : FieldEditor::tr("(none)"));
        for (const auto &choice : f.choices) {
            m_combo->addItem(choice.second.isEmpty() ? choice.first : choice.second,
                             choice.first);
        }
        auto *layout = new QHBoxLayout(this);
        layout->setContentsMargins(FrameWidth, FrameWidth, FrameWidth, FrameWidth);
        layout->addWidget(m_combo);
        layout->addStretch();
        setValue(f.defaultValue);
        connect(m_combo, &QComboBox::currentIndexChanged, this, [this] { emitEdited(); });
    }

    QWidget *input() const override { return m_combo; }

    QJsonValue value() const override
    {
        const QVariant choice = m_combo->currentData();
        return choice.isValid() ? QJsonValue(choice.toString()) : QJsonValue(QJsonValue::Undefined);
    }

    void setValue(const QJsonValue &v) override
    {
        int index = -1;
        QString error;
        if (!v.isUndefined() && !v.isNull()) {
            if (const std::optional<QJsonValue> coerced = field().coerce(v, &error))
                index = m_combo->findData(coerced->toString());
        }
        m_settingValue = true;
        m_combo->setCurrentIndex(index >= 0 ? index : 0);
        m_settingValue = false;
    }

private:
    QComboBox *m_combo = nullptr;
};

class MultiSelectEditor final : public FieldEditor
{
public:
    MultiSelectEditor(const Field &f, QWidget *parent)
        : FieldEditor(f, parent)
    {
        m_list = new QListWidget(this);
        m_list->setSelectionMode(QAbstractItemView::SingleSelection);
        m_list->setUniformItemSizes(true);
        for (const auto &choice : f.choices) {
            auto *item = new QListWidgetItem(
                choice.second.isEmpty() ? choice.first : choice.second, m_list);
            item->setData(Qt::UserRole, choice.first);
            item->setFlags(Qt::ItemIsEnabled | Qt::ItemIsUserCheckable | Qt::ItemIsSelectable);
            item->setCheckState(Qt::Unchecked);
        }
        const int rows = std::clamp(static_cast<int>(f.choices.size()), 1, 8);
        const int rowHeight = m_list->sizeHintForRow(0) > 0 ? m_list->sizeHintForRow(0)
                                                            : fontMetrics().height() + 4;
        m_list->setFixedHeight(rows * rowHeight + 2 * m_list->frameWidth() + 2);
        auto *layout = new QHBoxLayout(this);
        layout->setContentsMargins(FrameWidth, FrameWidth, FrameWidth, FrameWidth);
        layout->addWidget(m_list);
        setValue(f.defaultValue);
        connect(m_list, &QListWidget::itemChanged, this, [this] { emitEdited(); });
        // Space toggles the current item, as it does on a row of check boxes.
        m_list->installEventFilter(this);
    }

    QWidget *input() const override { return m_list; }

    QJsonValue value() const override
    {
        QJsonArray values;
        for (int i = 0; i < m_list->count(); ++i) {
            const QListWidgetItem *item = m_list->item(i);
            if (item->checkState() == Qt::Checked)
                values.append(item->data(Qt::UserRole).toString());
        }
        // An empty selection only counts as a choice when it overrides a default.
        const bool hasDefault = !field().defaultValue.isUndefined() && !field().defaultValue.isNull();
        if (values.isEmpty() && !hasDefault)
            return QJsonValue::Undefined;
        return values;
    }

    void setValue(const QJsonValue &v) override
    {
        QStringList chosen;
        QString error;
        if (!v.isUndefined() && !v.isNull()) {
            if (const std::optional<QJsonValue> coerced = field().coerce(v, &error)) {
                for (const QJsonValue &item : coerced->toArray())
                    chosen << item.toString();
            }
        }
        m_settingValue = true;
        for (int i = 0; i < m_list->count(); ++i) {
            QListWidgetItem *item = m_list->item(i);
            item->setCheckState(chosen.contains(item->data(Qt::UserRole).toString())
                                    ? Qt::Checked
                                    : Qt::Unchecked);
        }
        m_settingValue = false;
    }

protected:
    bool eventFilter(QObject *watched, QEvent *event) override
    {
        if (watched == m_list && event->type() == QEvent::KeyPress
            && static_cast<QKeyEvent *>(event)->key() == Qt::Key_Space) {
            if (QListWidgetItem *item = m_list->currentItem()) {
                item->setCheckState(item->checkState() == Qt::Checked ? Qt::Unchecked
                                                                      : Qt::Checked);
                return true;
            }
        }
        return FieldEditor::eventFilter(watched, event);
    }

private:
    QListWidget *m_list = nullptr;
};

class DateTimeEditor final : public FieldEditor
{
public:
    DateTimeEditor(const Field &f, QWidget *parent)
        : FieldEditor(f, parent)
    {
        m_edit = new QDateTimeEdit(this);
        m_edit->setCalendarPopup(true);
        m_edit->setTimeSpec(Qt::LocalTime);
        m_edit->setDisplayFormat(u"yyyy-MM-dd HH:mm:ss"_s);
        // The lowest date stands for "not set", shown as words, so that an optional date
        // can stay empty like any other field.
        m_edit->setMinimumDateTime(unsetValue());
        m_edit->setSpecialValueText(FieldEditor::tr("Not set"));
        m_edit->setToolTip(FieldEditor::tr("Local time; sent as UTC"));
        m_edit->calendarWidget()->installEventFilter(this);
        auto *layout = new QHBoxLayout(this);
        layout->setContentsMargins(FrameWidth, FrameWidth, FrameWidth, FrameWidth);
        layout->addWidget(m_edit);
        layout->addStretch();
        setValue(f.defaultValue);
        connect(m_edit, &QDateTimeEdit::dateTimeChanged, this, [this] { emitEdited(); });
    }

    QWidget *input() const override { return m_edit; }

    QJsonValue value() const override
    {
        const QDateTime dt = m_edit->dateTime();
        if (dt == m_edit->minimumDateTime())
            return QJsonValue::Undefined;
        return QJsonValue(dt.toUTC().toString(Qt::ISODate));
    }

    void setValue(const QJsonValue &v) override
    {
        QDateTime dt = unsetValue();
        QString error;
        if (!v.isUndefined() && !v.isNull()) {
            if (const std::optional<QJsonValue> coerced = field().coerce(v, &error)) {
                const QDateTime parsed =
                    QDateTime::fromString(coerced->toString(), Qt::ISODateWithMs);
                if (parsed.isValid())
                    dt = parsed.toLocalTime();
            }
        }
        m_settingValue = true;
        m_edit->setDateTime(dt);
        m_settingValue = false;
    }

protected:
    bool eventFilter(QObject *watched, QEvent *event) override
    {
        // The popup would open on the "not set" date, a century ago: today is the better
        // place to start choosing.
        if (watched == m_edit->calendarWidget() && event->type() == QEvent::Show
            && m_edit->dateTime() == m_edit->minimumDateTime()) {
            m_edit->calendarWidget()->setSelectedDate(QDate::currentDate());
        }
        return FieldEditor::eventFilter(watched, event);
    }

private:
    static QDateTime unsetValue() { return QDateTime(QDate(1900, 1, 1), QTime(0, 0)); }

    QDateTimeEdit *m_edit = nullptr;
};

} // namespace

FieldEditor::FieldEditor(const Field &field, QWidget *parent)
    : QWidget(parent)
    , m_field(field)
{
}

FieldEditor::~FieldEditor() = default;

QList<QWidget *> FieldEditor::focusWidgets() const
{
    return {input()};
}

QString FieldEditor::liveError() const
{
    return QString();
}

void FieldEditor::setInvalid(bool invalid)
{
    if (m_invalid == invalid)
        return;
    m_invalid = invalid;
    update();
}

QString FieldEditor::coerceError(const QJsonValue &raw) const
{
    QString error;
    if (m_field.coerce(raw, &error))
        return QString();
    return error;
}

void FieldEditor::emitEdited()
{
    if (!m_settingValue)
        Q_EMIT edited();
}

void FieldEditor::paintEvent(QPaintEvent *event)
{
    QWidget::paintEvent(event);
    if (!m_invalid)
        return;
    // The frame goes around the input only, not around the stretch beside it.
    const QWidget *in = input();
    QRect box = in->geometry();
    for (QWidget *w : focusWidgets())
        box = box.united(w->geometry());
    box.adjust(-FrameWidth + 1, -FrameWidth + 1, FrameWidth - 1, FrameWidth - 1);
    QPainter painter(this);
    painter.setRenderHint(QPainter::Antialiasing);
    painter.setPen(QPen(MessageBanner::accentColor(MessageBanner::Type::Error), FrameWidth));
    painter.setBrush(Qt::NoBrush);
    painter.drawRoundedRect(QRectF(box).adjusted(0.5, 0.5, -0.5, -0.5), 3, 3);
}

FieldEditor *createFieldEditor(const Field &field, QWidget *parent)
{
    switch (field.type) {
    case FieldType::Text:
        return new TextEditor(field, parent);
    case FieldType::Textarea:
        return new TextareaEditor(field, parent);
    case FieldType::Integer:
        return new IntegerEditor(field, parent);
    case FieldType::Number:
        return new NumberEditor(field, parent);
    case FieldType::Bool:
        return new BoolEditor(field, parent);
    case FieldType::Select:
        return new SelectEditor(field, parent);
    case FieldType::MultiSelect:
        return new MultiSelectEditor(field, parent);
    case FieldType::File:
        return new FileEditor(field, parent);
    case FieldType::Secret:
        return new SecretEditor(field, parent);
    case FieldType::DateTime:
        return new DateTimeEditor(field, parent);
    }
    return new TextEditor(field, parent);
}

QString secretPlaceholderForDefault()
{
    return FieldEditor::tr("A value is set; type to replace it");
}

QString secretPlaceholderAfterRerun()
{
    return FieldEditor::tr("Type it again (secrets are not stored)");
}

} // namespace taskdeck::ui
