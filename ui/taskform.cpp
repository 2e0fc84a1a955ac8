// SPDX-License-Identifier: MIT
#include "taskform.h"

#include "fieldeditors.h"
#include "messagebanner.h"

#include <QEvent>
#include <QFormLayout>
#include <QLabel>
#include <QLineEdit>
#include <QVBoxLayout>

using namespace Qt::StringLiterals;

namespace taskdeck::ui {

namespace {

// A label text with a mnemonic on its first letter; '&' in titles is kept literal.
QString labelText(const Field &field)
{
    QString text = field.label();
    text.replace(u'&', u"&&"_s);
    text.prepend(u'&');
    if (field.required)
        text += u" *"_s;
    return text;
}

QString describeField(const Field &field, const QString &error)
{
    QStringList parts;
    if (field.required)
        parts << TaskForm::tr("Required.");
    if (!field.description.isEmpty())
        parts << field.description;
    if (!error.isEmpty())
        parts << TaskForm::tr("Error: %1").arg(error);
    return parts.join(u' ');
}

} // namespace

TaskForm::TaskForm(QWidget *parent)
    : QWidget(parent)
{
    auto *layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    m_banner = new MessageBanner(MessageBanner::Type::Error, QString(), this);
    m_banner->hide();
    layout->addWidget(m_banner);
    m_body = new QWidget(this);
    m_form = new QFormLayout(m_body);
    m_form->setContentsMargins(0, 0, 0, 0);
    m_form->setFieldGrowthPolicy(QFormLayout::AllNonFixedFieldsGrow);
    m_form->setLabelAlignment(Qt::AlignRight | Qt::AlignTop);
    m_form->setRowWrapPolicy(QFormLayout::DontWrapRows);
    layout->addWidget(m_body);
    layout->addStretch(1);
}

TaskForm::~TaskForm() = default;

void TaskForm::clear()
{
    m_rows.clear();
    while (m_form->rowCount() > 0)
        m_form->removeRow(0);
    m_banner->hide();
    m_banner->setText(QString());
}

void TaskForm::setTask(const TaskPtr &task)
{
    clear();
    m_task = task;
    if (!task)
        return;

    m_rows.reserve(task->fields.size());
    const int lineHeight = QLineEdit().sizeHint().height();
    QWidget *previous = nullptr;
    for (const Field &field : task->fields) {
        Row r;
        r.key = field.key;
        auto *cell = new QWidget(m_body);
        // Rows keep their natural height; spare room goes below the form, not between rows.
        cell->setSizePolicy(QSizePolicy::Preferred, QSizePolicy::Maximum);
        auto *cellLayout = new QVBoxLayout(cell);
        cellLayout->setContentsMargins(0, 0, 0, 0);
        cellLayout->setSpacing(2);

        r.editor = createFieldEditor(field, cell);
        cellLayout->addWidget(r.editor);

        r.help = new QLabel(field.description, cell);
        r.help->setWordWrap(true);
        r.help->setTextFormat(Qt::PlainText);
        r.help->setVisible(!field.description.isEmpty());
        r.help->setContentsMargins(2, 0, 2, 0);
        QFont small = r.help->font();
        small.setPointSizeF(small.pointSizeF() * 0.92);
        r.help->setFont(small);
        cellLayout->addWidget(r.help);

        r.error = new QLabel(cell);
        r.error->setWordWrap(true);
        r.error->setTextFormat(Qt::PlainText);
        r.error->setContentsMargins(2, 0, 2, 0);
        r.error->hide();
        cellLayout->addWidget(r.error);

        r.label = new QLabel(labelText(field), m_body);
        r.label->setBuddy(r.editor->input());
        if (field.required)
            r.label->setToolTip(tr("Required"));
        // Line the label up with the editor's text, not with the top of its frame.
        r.label->setFixedHeight(std::min(r.editor->input()->sizeHint().height(), lineHeight)
                                + 4);
        r.label->setAlignment(Qt::AlignRight | Qt::AlignVCenter);

        QWidget *input = r.editor->input();
        input->setAccessibleName(field.label());
        input->setAccessibleDescription(describeField(field, QString()));
        if (!field.description.isEmpty())
            input->setToolTip(field.description);

        m_form->addRow(r.label, cell);
        for (QWidget *w : r.editor->focusWidgets()) {
            if (previous)
                setTabOrder(previous, w);
            previous = w;
        }
        m_rows.append(r);
    }
    // Connected once the list is final: rows are referred to by index.
    for (qsizetype i = 0; i < m_rows.size(); ++i) {
        connect(m_rows[i].editor, &FieldEditor::edited, this, [this, i] {
            onEdited(m_rows[i]);
            Q_EMIT changed();
        });
    }
    updateColors();
}

QJsonObject TaskForm::values() const
{
    QJsonObject args;
    for (const Row &r : m_rows) {
        const QJsonValue v = r.editor->value();
        if (!v.isUndefined())
            args.insert(r.key, v);
    }
    return args;
}

void TaskForm::setValues(const QJsonObject &args)
{
    for (Row &r : m_rows)
        r.editor->setValue(args.value(r.key));
    clearErrors();
}

bool TaskForm::validate()
{
    if (!m_task)
        return true;
    const Validation result = validateArguments(m_task->fields, values());
    setErrors(result.errors);
    return result.ok();
}

void TaskForm::setErrors(const FieldErrors &errors)
{
    clearErrors();
    QStringList unplaced;
    QHash<QString, QStringList> byField;
    for (const FieldError &e : errors) {
        if (row(e.field))
            byField[e.field] << e.message;
        else if (e.field.isEmpty())
            unplaced << e.message;
        else
            unplaced << e.field + u": "_s + e.message;
    }
    for (Row &r : m_rows) {
        if (byField.contains(r.key))
            showError(r, byField.value(r.key).join(u'\n'));
    }
    if (!unplaced.isEmpty()) {
        m_banner->setText(unplaced.join(u'\n'));
        m_banner->show();
    }
}

void TaskForm::clearErrors()
{
    for (Row &r : m_rows)
        showError(r, QString());
    m_banner->hide();
    m_banner->setText(QString());
}

bool TaskForm::hasErrors() const
{
    return firstInvalidEditor() || !m_banner->isHidden();
}

QWidget *TaskForm::editor(const QString &fieldKey) const
{
    const Row *r = row(fieldKey);
    return r ? r->editor->input() : nullptr;
}

QString TaskForm::errorText(const QString &fieldKey) const
{
    const Row *r = row(fieldKey);
    return r && !r->error->isHidden() ? r->error->text() : QString();
}

QString TaskForm::formErrorText() const
{
    return m_banner->isHidden() ? QString() : m_banner->text();
}

QList<QWidget *> TaskForm::focusChain() const
{
    QList<QWidget *> chain;
    for (const Row &r : m_rows)
        chain << r.editor->focusWidgets();
    return chain;
}

QWidget *TaskForm::firstInvalidEditor() const
{
    for (const Row &r : m_rows) {
        if (r.editor->isInvalid())
            return r.editor->input();
    }
    return nullptr;
}

TaskForm::Row *TaskForm::row(const QString &key)
{
    for (Row &r : m_rows) {
        if (r.key == key)
            return &r;
    }
    return nullptr;
}

const TaskForm::Row *TaskForm::row(const QString &key) const
{
    for (const Row &r : m_rows) {
        if (r.key == key)
            return &r;
    }
    return nullptr;
}

void TaskForm::showError(Row &r, const QString &message)
{
    r.error->setText(message);
    r.error->setVisible(!message.isEmpty());
    r.editor->setInvalid(!message.isEmpty());
    r.editor->input()->setAccessibleDescription(
        describeField(r.editor->field(), message));
}

void TaskForm::onEdited(Row &r)
{
    // What the user typed replaces an earlier verdict on this field: the live check's
    // answer is shown now, the rest waits for the next validation.
    showError(r, r.editor->liveError());
}

void TaskForm::updateColors()
{
    const QColor muted = palette().color(QPalette::PlaceholderText);
    const QColor error = MessageBanner::accentColor(MessageBanner::Type::Error);
    for (Row &r : m_rows) {
        QPalette help = r.help->palette();
        help.setColor(QPalette::WindowText, muted);
        r.help->setPalette(help);
        QPalette err = r.error->palette();
        err.setColor(QPalette::WindowText, error);
        r.error->setPalette(err);
    }
}

bool TaskForm::event(QEvent *event)
{
    const bool handled = QWidget::event(event);
    if (event->type() == QEvent::PaletteChange)
        updateColors();
    return handled;
}

} // namespace taskdeck::ui
